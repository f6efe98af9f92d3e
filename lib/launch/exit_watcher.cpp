#include "launch/exit_watcher.hpp"

#include "assert.hpp"
#include "platform/own_threads.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/system_error.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace mproc::launch {

struct exit_watcher::impl {
  using guard_type = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  std::optional<boost::asio::io_context> context;  // one thread runs it
  std::optional<guard_type> guard;
  std::thread thread;

  std::mutex mutex;
  bool stopped = false;                                    // guarded by mutex
  std::uint64_t last_id = 0;                               // guarded by mutex
  std::map<std::uint64_t, std::function<void()>> cancels;  // guarded by mutex
};

exit_watcher::exit_watcher() : impl_(std::make_unique<impl>()) {
  // Descriptors or memory may have run out: that is an error of `start`, not an exception here.
  try {
    impl_->context.emplace(1);
    impl_->guard.emplace(impl_->context->get_executor());
    error_ = prepare(*impl_->context);
  } catch (const boost::system::system_error& e) {
    error_ = {e.code().value(), std::system_category()};
  }
}

exit_watcher::~exit_watcher() { stop(); }

boost::asio::io_context& exit_watcher::context() noexcept { return *impl_->context; }

std::error_code exit_watcher::start() {
  if (error_ || impl_->thread.joinable()) return error_;
  std::error_code ec;
  impl_->thread = platform::start_own_thread([this] { impl_->context->run(); }, ec);
  return ec;
}

void exit_watcher::stop() noexcept {
  std::map<std::uint64_t, std::function<void()>> cancels;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    cancels.swap(impl_->cancels);
  }
  if (!impl_->context) return;
  impl_->guard.reset();
  impl_->context->stop();
  try {
    if (impl_->thread.joinable()) impl_->thread.join();
    // Cancelled waits complete with operation_aborted; running them here destroys their
    // callbacks (which may own a zygote) without calling them. A child's wait that completes
    // meanwhile calls its callback here.
    for (auto& [id, cancel] : cancels) cancel();
    impl_->context->restart();
    impl_->context->poll();
  } catch (...) {
    MPROC_ASSERT(false, "a callback of a wait threw at stop");
  }
}

std::uint64_t exit_watcher::on_stop(std::function<void()> cancel) {
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->stopped) {
      impl_->cancels.emplace(++impl_->last_id, std::move(cancel));
      return impl_->last_id;
    }
  }
  cancel();
  return 0;
}

void exit_watcher::forget(std::uint64_t id) noexcept {
  std::function<void()> dropped;  // destroyed without the lock
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->cancels.find(id);
  if (it == impl_->cancels.end()) return;
  dropped = std::move(it->second);
  impl_->cancels.erase(it);
}

}  // namespace mproc::launch
