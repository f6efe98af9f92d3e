#include "platform/own_threads.hpp"

#include "platform/process.hpp"

#include <algorithm>
#include <atomic>

namespace mproc::platform {

namespace {
std::atomic<std::size_t> g_own{0};
thread_local int t_user_code_depth = 0;
thread_local bool t_own = false;
}  // namespace

// Counted by the creator before the thread exists (so that a pool started right after sees it
// counted) and uncounted as its body returns, just before it ends.
std::thread start_own_thread(std::function<void()> body, std::error_code& ec) noexcept {
  ec.clear();
  g_own.fetch_add(1, std::memory_order_seq_cst);
  try {
    return std::thread([body = std::move(body)] {
      t_own = true;
      body();
      g_own.fetch_sub(1, std::memory_order_seq_cst);
    });
  } catch (const std::system_error& e) {
    ec = e.code();
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  g_own.fetch_sub(1, std::memory_order_seq_cst);
  return {};
}

std::size_t own_threads() noexcept { return g_own.load(std::memory_order_seq_cst); }

std::size_t foreign_threads() {
  // Our count before and after the system's, the smaller one: a thread of ours that ends
  // meanwhile is left out of ours whenever the system's count may miss it. (One being created
  // meanwhile by another thread may be counted early; that thread is the application's own.)
  const std::size_t before = own_threads();
  const std::size_t all = thread_count();
  const std::size_t own = std::min(before, own_threads());
  return std::max<std::size_t>(1, all > own ? all - own : 1);
}

std::shared_mutex& user_code_gate() {
  static std::shared_mutex gate;  // function-local: usable during static initialisation
  return gate;
}

bool in_user_code() noexcept { return t_own && t_user_code_depth > 0; }

// Only mproc's threads take the gate (the application's threads are the application's to
// keep out of a fork), and nested callbacks (one completing another future) take it once.
user_code_scope::user_code_scope() : outermost_(t_own && t_user_code_depth++ == 0) {
  if (outermost_) user_code_gate().lock_shared();
}

user_code_scope::~user_code_scope() {
  if (!t_own) return;
  if (outermost_) user_code_gate().unlock_shared();
  --t_user_code_depth;
}

}  // namespace mproc::platform
