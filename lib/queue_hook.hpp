#pragma once
// A seam for the queue's tests: a function the queue calls while it holds a cell, so that a
// test can end a process at exactly that instruction. Empty in programs.

#include <atomic>

namespace mproc::detail {

/// Where the queue calls `queue_test_hook`: right after it took a cell to put or to get.
enum class queue_moment { put_holds_cell, get_holds_cell };

/// Called (when set) at each `queue_moment`; for tests only.
extern std::atomic<void (*)(queue_moment)> queue_test_hook;

}  // namespace mproc::detail
