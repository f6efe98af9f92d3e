// mproc::thread_pool on Boost.Asio's thread_pool.

#include <mproc/thread_pool.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>
#include <mutex>
#include <thread>

namespace mproc {

struct thread_pool::impl {
  explicit impl(std::size_t n) : threads(n), pool(n) {}
  std::size_t threads;
  boost::asio::thread_pool pool;
  std::mutex mutex;
  bool closed = false;                                       // guarded by mutex
  std::vector<std::weak_ptr<detail::task_state>> submitted;  // guarded by mutex; for cancelling
  bool joined = false;                                       // guarded by join_mutex
  std::mutex join_mutex;
};

namespace {
std::size_t thread_count(std::size_t requested) {
  if (requested != 0) return requested;
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}
}  // namespace

thread_pool::thread_pool(std::size_t threads)
    : impl_(std::make_unique<impl>(thread_count(threads))) {}

thread_pool::~thread_pool() { shutdown(true, false); }

void thread_pool::post(std::function<void()> job,
                       const std::shared_ptr<detail::task_state>& state) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed) throw pool_closed();
    // Forget completed tasks now and then, so that the list stays short.
    if (impl_->submitted.size() >= 1024) {
      std::erase_if(impl_->submitted, [](const auto& w) { return w.expired(); });
    }
    impl_->submitted.push_back(state);
  }
  boost::asio::post(impl_->pool, std::move(job));
}

void thread_pool::shutdown(bool wait, bool cancel_pending) {
  std::vector<std::weak_ptr<detail::task_state>> submitted;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->closed = true;
    if (cancel_pending) submitted.swap(impl_->submitted);
  }
  for (const auto& w : submitted) {
    if (const auto state = w.lock()) state->cancel();
  }
  if (!wait) return;
  std::lock_guard lock(impl_->join_mutex);
  if (!impl_->joined) {
    impl_->pool.join();
    impl_->joined = true;
  }
}

std::size_t thread_pool::workers() const noexcept { return impl_->threads; }

}  // namespace mproc
