#pragma once
// A node supervisor: every rank but 0. It never runs user code itself; it feeds the tasks rank
// 0 sends into a local process_pool, so a worker that crashes fails only its task.

#include "mpi/comm.hpp"
#include "mpi/wire.hpp"

#include <mproc/mpi_pool.hpp>

namespace mproc::mpi_supervisor {

/// Joins the start (identity check, local pool, hello to rank 0), serves until rank 0 says
/// stop, finalises MPI if `finalize` and ends the process.
[[noreturn]] void serve(MPI_Comm comm, const mpi_wire::identity& rank0, const mpi_options& options,
                        bool finalize);

}  // namespace mproc::mpi_supervisor
