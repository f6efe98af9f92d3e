#pragma once
// Helpers shared by the test suites: what a process leaves behind, and the start methods to run.

#include <mproc/mproc.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace mproc_test {

/// Returns the pids of every descendant of this process (zombies included).
std::vector<int> child_pids();

/// Returns the pids of every descendant of the process `root` (zombies included).
std::vector<int> descendants_of(int root);

/// Returns the pids of the processes whose parent is this process.
std::vector<int> direct_children();

/// Returns the shared-memory segments this process created that still exist.
std::vector<std::string> leftover_segments();

#if defined(__SANITIZE_THREAD__)
/// ThreadSanitizer starts a thread of its own and cannot follow a fork of a multi-threaded
/// process, so the fork method is not checked under it.
inline constexpr bool under_tsan = true;
#else
/// Whether this test runs under ThreadSanitizer.
inline constexpr bool under_tsan = false;
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/// Whether operator new is a sanitizer's, which ends the process instead of throwing bad_alloc.
inline constexpr bool sanitized_allocator = true;
#else
/// Whether operator new is a sanitizer's, which ends the process instead of throwing bad_alloc.
inline constexpr bool sanitized_allocator = false;
#endif

/// Returns the start methods the tests run under: every available one (not fork under TSan).
std::vector<mproc::start_method> methods_under_test();

/// A Boost.Test precondition: false (the test is skipped) under ThreadSanitizer.
struct not_under_tsan {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(!under_tsan);
    r.message() << "the fork method cannot be checked under ThreadSanitizer";
    return r;
  }
};

/// Returns a pool_options with `workers` workers and start method `method`.
mproc::pool_options options(mproc::start_method method, std::size_t workers = 2);

/// Checks at the end of each test that no child process and no segment is left.
struct clean_check {
  clean_check();
  ~clean_check();
};

}  // namespace mproc_test
