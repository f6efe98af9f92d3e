#pragma once
// Scale-out: the same registered tasks over the ranks of an MPI job (target `mproc::mpi`).

#include <mproc/detail/encoded_pool.hpp>
#include <mproc/pool.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string_view>
#include <vector>

namespace mproc {

/// Settings of an `mpi_pool`; every field has a usable default.
struct mpi_options {
  /// Worker processes on each node (each rank other than 0); 0 means that node's cores.
  std::size_t workers_per_node = 0;
  /// The settings of each node's local `process_pool` (its `workers` is `workers_per_node`).
  pool_options local;
};

namespace detail {
class mpi_engine;
}

/// A pool whose workers are the local `process_pool`s of the ranks of an MPI job: the surface
/// of `process_pool` across machines.
///
/// Start the program with `mpiexec -n N ./app` (or `srun`). Rank 0 is the application; every
/// other rank becomes a node supervisor inside the constructor, feeds its local pool and exits
/// when rank 0 shuts the pool down. A task that throws, crashes its worker or times out fails
/// only itself, as on one machine; a lost rank ends the whole job (MPI's rule). One `mpi_pool`
/// per run. Thread-safe: any thread may submit. The destructor calls `shutdown()`.
class mpi_pool : public detail::encoded_pool<mpi_pool> {
 public:
  /// Joins the MPI job (initialising MPI if needed); on ranks other than 0, serves and never
  /// returns. Throws `start_error` on rank 0 if a rank runs a different build or its local pool
  /// cannot start, naming the rank.
  mpi_pool(int& argc, char**& argv, const mpi_options& options = {});
  /// Waits for every task, stops every supervisor and finalises MPI if it initialised it.
  ///
  /// During stack unwinding it does not wait: queued and running tasks are cancelled.
  ~mpi_pool();
  mpi_pool(const mpi_pool&) = delete;
  mpi_pool& operator=(const mpi_pool&) = delete;

  /// Stops accepting tasks, waits for the sent ones (see `process_pool::shutdown`); with
  /// `cancel_pending`, queued tasks and those running on the nodes fail with `cancelled_error`.
  void shutdown(bool wait = true, bool cancel_pending = false);

  /// Returns the number of worker processes on all nodes together.
  std::size_t workers() const noexcept;

  /// Returns the number of nodes (supervisor ranks).
  std::size_t nodes() const noexcept;

  /// Returns the number of worker processes on node `node` (0 to `nodes() - 1`; rank `node + 1`).
  std::size_t workers_on(std::size_t node) const;

 private:
  friend class detail::encoded_pool<mpi_pool>;

  std::shared_ptr<detail::task_state> enqueue(std::uint64_t key, std::string_view name,
                                              std::uint32_t count, std::vector<char> payload,
                                              const detail::block_result* block = nullptr);

  std::unique_ptr<detail::mpi_engine> engine_;
  int uncaught_at_start_ = std::uncaught_exceptions();
};

}  // namespace mproc
