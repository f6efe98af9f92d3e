#pragma once
// Helpers shared by the test suites: what a process leaves behind, and the start methods to run.

#include <mproc/mproc.hpp>

#include <string>
#include <vector>

namespace mproc_test {

/// Returns the pids of every descendant of this process (zombies included).
std::vector<int> child_pids();

/// Returns the pids of the processes whose parent is this process.
std::vector<int> direct_children();

/// Returns the shared-memory segments this process created that still exist.
std::vector<std::string> leftover_segments();

/// Returns a pool_options with `workers` workers and start method `method`.
mproc::pool_options options(mproc::start_method method, std::size_t workers = 2);

/// Checks at the end of each test that no child process and no segment is left.
struct clean_check {
  clean_check();
  ~clean_check();
};

}  // namespace mproc_test
