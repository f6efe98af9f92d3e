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

void task_state::set_error(std::exception_ptr error) {
  std::unique_lock lock(mutex_);
  if (status_ == status::done) return;
  error_ = std::move(error);
  complete(lock);
}

void task_state::complete(std::unique_lock<std::mutex>& lock) {
  status_ = status::done;
  std::vector<std::function<void()>> callbacks = std::move(callbacks_);
  callbacks_.clear();
  lock.unlock();
  done_cv_.notify_all();
  for (auto& callback : callbacks) callback();
}

bool task_state::ready() const {
  std::lock_guard lock(mutex_);
  return status_ == status::done;
}

void task_state::wait() const {
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return status_ == status::done; });
}

bool task_state::wait_until(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  return done_cv_.wait_until(lock, deadline, [this] { return status_ == status::done; });
}

std::vector<char> task_state::take() {
  std::unique_lock lock(mutex_);
  done_cv_.wait(lock, [this] { return status_ == status::done; });
  if (error_) std::rethrow_exception(error_);
  return std::move(value_);
}

void task_state::on_done(std::function<void()> callback) {
  std::unique_lock lock(mutex_);
  if (status_ != status::done) {
    callbacks_.push_back(std::move(callback));
    return;
  }
  lock.unlock();
  callback();
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
