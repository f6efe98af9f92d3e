#include "spin.hpp"

#include <mproc/detail/task_state.hpp>
#include <mproc/errors.hpp>
#include <mproc/future.hpp>

#include <utility>

namespace mproc::detail {

bool task_state::try_start() {
  std::lock_guard lock(mutex_);
  if (status_ != status::pending) return false;
  status_ = status::running;
  return true;
}

bool task_state::cancel() {
  std::unique_lock lock(mutex_);
  if (status_ != status::pending) return false;
  error_ = std::make_exception_ptr(cancelled_error());
  complete(lock);
  return true;
}

void task_state::set_value(std::vector<char> bytes) {
  std::unique_lock lock(mutex_);
  if (status_ == status::done) return;
  value_ = std::move(bytes);
  complete(lock);
}

void task_state::set_object(std::shared_ptr<void> object) {
  std::unique_lock lock(mutex_);
  if (status_ == status::done) return;
  object_ = std::move(object);
  complete(lock);
}

std::shared_ptr<void> task_state::take_object() {
  std::unique_lock lock(mutex_);
  await_done(lock);
  if (error_) std::rethrow_exception(error_);
  return std::move(object_);
}

void task_state::set_error(std::exception_ptr error) {
  std::unique_lock lock(mutex_);
  if (status_ == status::done) return;
  error_ = std::move(error);
  complete(lock);
}

void task_state::complete(std::unique_lock<std::mutex>& lock) {
  status_ = status::done;
  done_.store(true, std::memory_order_release);
  std::vector<std::function<void()>> callbacks = std::move(callbacks_);
  callbacks_.clear();
  lock.unlock();
  done_cv_.notify_all();
  for (auto& callback : callbacks) callback();
}

void task_state::begin_route(route* r) noexcept {
  route_ = r;
  route_step_.store(route_step::sending, std::memory_order_release);
}

void task_state::end_route_send() noexcept {
  route_step_.store(route_step::sent, std::memory_order_release);
}

bool task_state::claim_route() const noexcept {
  route_step expected = route_step::sent;
  return route_step_.load(std::memory_order_relaxed) == expected &&
         route_step_.compare_exchange_strong(expected, route_step::claimed,
                                             std::memory_order_acq_rel);
}

// A waiter that does not collect (a timed wait, a poll, a callback) leaves a task sent straight
// to a worker to the pool's thread, which otherwise would not look at it.
void task_state::release_route() const {
  // The task object is never const; waiting is a const operation only for its callers.
  if (claim_route()) route_->release(const_cast<task_state&>(*this));
}

// Waits for completion with `lock` held on return. A task sent straight to a worker is
// collected by this thread; otherwise it spins a little first, unlocked, since a short task's
// result often arrives within microseconds.
void task_state::await_done(std::unique_lock<std::mutex>& lock) const {
  if (status_ == status::done) return;
  lock.unlock();
  if (claim_route()) route_->collect(const_cast<task_state&>(*this));
  thread_local spinner spin;
  spin.spin([this] { return done_.load(std::memory_order_acquire); });
  lock.lock();
  done_cv_.wait(lock, [this] { return status_ == status::done; });
}

bool task_state::ready() const {
  release_route();
  std::lock_guard lock(mutex_);
  return status_ == status::done;
}

void task_state::wait() const {
  std::unique_lock lock(mutex_);
  await_done(lock);
}

bool task_state::wait_until(std::chrono::steady_clock::time_point deadline) const {
  release_route();
  std::unique_lock lock(mutex_);
  return done_cv_.wait_until(lock, deadline, [this] { return status_ == status::done; });
}

std::vector<char> task_state::take() {
  std::unique_lock lock(mutex_);
  await_done(lock);
  if (error_) std::rethrow_exception(error_);
  return std::move(value_);
}

void task_state::on_done(std::function<void()> callback) {
  std::unique_lock lock(mutex_);
  if (status_ != status::done) {
    callbacks_.push_back(std::move(callback));
    lock.unlock();
    release_route();
    return;
  }
  lock.unlock();
  callback();
}

void wait_with_progress(const std::vector<std::shared_ptr<task_state>>& chunks,
                        const progress_function& progress) {
  std::size_t total = 0;
  for (const auto& c : chunks) total += c->count();
  auto queue = std::make_shared<completion_queue>();
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    chunks[i]->on_done([queue, i] { queue->push(i); });
  }
  std::size_t done = 0;
  progress(done, total);
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    done += chunks[queue->pop()]->count();
    progress(done, total);
  }
}

void completion_queue::push(std::size_t index) {
  {
    std::lock_guard lock(mutex_);
    ready_.push_back(index);
  }
  cv_.notify_one();
}

std::size_t completion_queue::pop() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [this] { return !ready_.empty(); });
  const std::size_t index = ready_.front();
  ready_.pop_front();
  return index;
}

}  // namespace mproc::detail
