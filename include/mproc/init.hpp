#pragma once

namespace mproc {

/// Prepares mproc; in a spawned worker process, runs the worker loop and never returns.
///
/// Call it first in `main`, before anything else runs: a worker started by the spawn method
/// re-executes the program and must not run the rest of `main`. Throws `start_error` if two
/// tasks share one name (for example functions with internal linkage in different files).
void init(int argc, char** argv);

/// Returns whether this process is an mproc worker (true inside a running task).
bool is_worker() noexcept;

}  // namespace mproc
