#include "mpi/supervisor.hpp"

#include "platform/process.hpp"
#include "pool_access.hpp"
#include "registry.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/errors.hpp>

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <unordered_map>

namespace mproc::mpi_supervisor {

namespace {

// How long an idle supervisor sleeps between looks at its communicator, at most.
constexpr auto longest_nap = std::chrono::microseconds(1000);
// Results of one message, in bytes, unless a single result is larger.
constexpr std::size_t batch_bytes = std::size_t{4} << 20;

void copy_text(char* to, std::size_t size, const std::string& text) {
  const std::size_t n = std::min(size - 1, text.size());
  std::copy_n(text.data(), n, to);
  to[n] = '\0';
}

class node {
 public:
  node(MPI_Comm comm, int rank) : comm_(comm), rank_(rank) {}

  // Returns the local pool's start problem, or "".
  std::string start(const mpi_wire::identity& rank0, const mpi_options& options) {
    const std::string differs = mpi_wire::differences(mpi_wire::own_identity(), rank0);
    if (!differs.empty()) return "it runs a different build: " + differs;
    try {
      pool_options local = options.local;
      if (options.workers_per_node != 0) local.workers = options.workers_per_node;
      pool_.emplace(local);
      return {};
    } catch (const std::exception& e) {
      return std::string("its local pool could not start: ") + e.what();
    }
  }

  std::size_t workers() const { return pool_ ? pool_->workers() : 0; }

  void serve() {
    mpi_comm::backoff idle(longest_nap);
    bool stopping = false;
    for (;;) {
      bool busy = outbox_.progress();
      while (auto in = mpi_comm::poll(comm_, 0)) {
        busy = true;
        if (in->tag == mpi_wire::tasks) {
          take_tasks(*in);
        } else if (in->tag == mpi_wire::stop) {
          const bool cancel = !in->bytes.empty() && in->bytes[0] != 0;
          pool_->shutdown(false, cancel);
          stopping = true;
        }
      }
      busy = send_results() || busy;
      if (stopping && running_ == 0) break;
      if (busy) {
        idle.active();
        continue;
      }
      const auto nap = idle.next();
      detail::unique_lock lock(mutex_);
      if (!ready_.empty()) continue;
      if (nap.count() == 0) {
        lock.unlock();
        std::this_thread::yield();
      } else {
        done_cv_.wait_for(lock.native(), nap);  // a finished task wakes it early
      }
    }
    pool_.reset();  // reaps the workers
    outbox_.send(comm_, 0, mpi_wire::stopped, {});
    outbox_.drain();
  }

 private:
  void take_tasks(const mpi_comm::incoming& in) {
    mpi_wire::reader r(in.bytes.data(), in.bytes.size());
    while (!r.done()) {
      const auto id = r.get<std::uint64_t>();
      const auto key = r.get<std::uint64_t>();
      const auto count = r.get<std::uint32_t>();
      const std::string_view bytes = r.get_bytes();
      ++running_;
      const registry::entry* entry = registry::find(key);
      if (entry == nullptr) {
        finish(id, nullptr,
               std::make_exception_ptr(serialization_error("rank " + std::to_string(rank_) +
                                                           " has no task with this task's key")));
        continue;
      }
      std::shared_ptr<detail::task_state> state;
      try {
        state = detail::pool_access::enqueue(*pool_, key, entry->name, count,
                                             std::vector<char>(bytes.begin(), bytes.end()));
      } catch (...) {
        finish(id, nullptr, std::current_exception());
        continue;
      }
      state->on_done([this, id, state] { finish(id, state.get(), state->error()); });
    }
  }

  // Called by the local pool's thread that completes the task (or by this one).
  void finish(std::uint64_t id, detail::task_state* state, const std::exception_ptr& error) {
    std::vector<char> value;
    std::exception_ptr failed = error;
    std::int64_t ran = 0;
    if (state != nullptr) {
      ran = state->ran().count();
      if (!failed) value = state->take();
    }
    if (!failed && value.size() > mpi_comm::max_message / 2) {
      failed = std::make_exception_ptr(serialization_error(
          "the result of '" + std::string(state->name()) + "' is " + std::to_string(value.size()) +
          " bytes, more than one MPI message carries: return it "
          "in parts, or leave it on the node (a file) and return where it is"));
    }
    std::vector<char> record;
    mpi_wire::writer w(record);
    w.put(id);
    w.put(ran);
    w.put<std::uint8_t>(failed ? 1 : 0);
    if (failed) {
      mpi_wire::put_error(w, failed);
    } else {
      w.put_bytes(std::string_view(value.data(), value.size()));
    }
    detail::lock_guard lock(mutex_);
    ready_.push_back(std::move(record));
    done_cv_.notify_one();
  }

  // Sends every result ready since the last call, in as few messages as fit; true if any.
  bool send_results() {
    std::vector<std::vector<char>> records;
    {
      detail::lock_guard lock(mutex_);
      records.swap(ready_);
    }
    if (records.empty()) return false;
    running_ -= records.size();
    std::vector<char> batch;
    for (std::vector<char>& r : records) {
      if (!batch.empty() && batch.size() + r.size() > batch_bytes) {
        outbox_.send(comm_, 0, mpi_wire::results, std::move(batch));
        batch.clear();
      }
      if (batch.empty()) {
        batch = std::move(r);  // a message's first record is not copied (a large result alone)
      } else {
        batch.insert(batch.end(), r.begin(), r.end());
      }
    }
    outbox_.send(comm_, 0, mpi_wire::results, std::move(batch));
    return true;
  }

  MPI_Comm comm_;
  int rank_;
  std::optional<process_pool> pool_;
  mpi_comm::outbox outbox_;
  std::size_t running_ = 0;  // tasks taken and not answered; this thread only
  detail::mutex mutex_;
  std::condition_variable done_cv_;
  std::vector<std::vector<char>> ready_ MPROC_GUARDED_BY(mutex_);  // results not yet sent
};

}  // namespace

void serve(MPI_Comm comm, const mpi_wire::identity& rank0, const mpi_options& options,
           bool finalize) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  try {
    node n(comm, rank);
    mpi_wire::node_hello hello;
    hello.id = mpi_wire::own_identity();
    copy_text(hello.problem, sizeof hello.problem, n.start(rank0, options));
    hello.workers = n.workers();
    hello.pid = platform::current_pid();
    ::gethostname(hello.host, sizeof hello.host - 1);
    mpi_comm::check(MPI_Gather(&hello, sizeof hello, MPI_BYTE, nullptr, 0, MPI_BYTE, 0, comm),
                    "MPI_Gather");
    std::uint8_t go = 0;
    mpi_comm::check(MPI_Bcast(&go, 1, MPI_BYTE, 0, comm), "MPI_Bcast");
    if (go != 0) n.serve();
  } catch (const std::exception& e) {
    // Nothing can reach rank 0 any more: the job ends, with the reason on stderr.
    std::fprintf(stderr, "mproc: the supervisor of rank %d failed: %s\n", rank, e.what());
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Comm_free(&comm);
  if (finalize) MPI_Finalize();
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace mproc::mpi_supervisor
