#include "exception_text.hpp"
#include "platform/own_threads.hpp"
#include "spin.hpp"

#include <mproc/detail/task_state.hpp>
#include <mproc/errors.hpp>
#include <mproc/future.hpp>

#include <cstdio>
#include <string>
#include <utility>

namespace mproc::detail {

namespace {

std::mutex& handler_mutex() {
  static std::mutex m;  // function-local: usable during static initialisation
  return m;
}
callback_error_handler& handler() {
  static callback_error_handler h;  // guarded by handler_mutex(); empty: the default
  return h;
}

void write_to_stderr(const callback_failure& f) {
  const exception_text e = describe_exception(f.error);
  const std::string task =
      f.task.empty() ? std::string("a task") : "task '" + std::string(f.task) + "'";
  std::fprintf(stderr,
               "mproc: a done-callback of %s threw %s: %s (the other callbacks still run)\n",
               task.c_str(), e.type.c_str(), e.message.c_str());
}

}  // namespace

void report_callback_failure(std::string_view task, std::exception_ptr error) noexcept {
  try {
    callback_error_handler h;
    {
      std::lock_guard lock(handler_mutex());
      h = handler();
    }
    const callback_failure f{task, std::move(error)};
    if (h) {
      h(f);
    } else {
      write_to_stderr(f);
    }
  } catch (...) {
    // The handler threw, or memory ran out: there is nobody left to tell.
  }
}

bool task_state::try_start() {
  lock_guard lock(mutex_);
  if (status_ != status::pending) return false;
  status_ = status::running;
  return true;
}

bool task_state::cancel() {
  unique_lock lock(mutex_);
  if (status_ != status::pending) return cancelled_;
  error_ = std::make_exception_ptr(cancelled_error());
  cancelled_ = true;
  std::vector<std::function<void()>> callbacks = complete();
  lock.unlock();
  announce(callbacks);
  return true;
}

bool task_state::cancelled() const {
  lock_guard lock(mutex_);
  return cancelled_;
}

bool task_state::running() const {
  lock_guard lock(mutex_);
  return status_ == status::running;
}

std::exception_ptr task_state::error() const {
  unique_lock lock(mutex_);
  await_done(lock);
  return error_;
}

void task_state::set_value(std::vector<char> bytes) {
  unique_lock lock(mutex_);
  if (status_ == status::done) return;
  value_ = std::move(bytes);
  std::vector<std::function<void()>> callbacks = complete();
  lock.unlock();
  announce(callbacks);
}

void task_state::set_object(std::shared_ptr<void> object) {
  unique_lock lock(mutex_);
  if (status_ == status::done) return;
  object_ = std::move(object);
  std::vector<std::function<void()>> callbacks = complete();
  lock.unlock();
  announce(callbacks);
}

std::shared_ptr<void> task_state::take_object() {
  unique_lock lock(mutex_);
  await_done(lock);
  if (error_) std::rethrow_exception(error_);
  return std::move(object_);
}

void task_state::set_error(std::exception_ptr error) {
  unique_lock lock(mutex_);
  if (status_ == status::done) return;
  error_ = std::move(error);
  std::vector<std::function<void()>> callbacks = complete();
  lock.unlock();
  announce(callbacks);
}

// Marks the task done; returns the callbacks that `announce` runs once mutex_ is released.
std::vector<std::function<void()>> task_state::complete() {
  status_ = status::done;
  done_.store(true, std::memory_order_release);
  std::vector<std::function<void()>> callbacks = std::move(callbacks_);
  callbacks_.clear();
  return callbacks;
}

void task_state::announce(std::vector<std::function<void()>>& callbacks) const {
  done_cv_.notify_all();
  for (auto& callback : callbacks) run_callback(callback);
}

void task_state::run_callback(std::function<void()>& callback) const noexcept {
  try {
    const platform::user_code_scope user_code;  // a fork of the application waits for it
    callback();
  } catch (...) {
    report_callback_failure(name_, std::current_exception());
  }
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

// Waits for completion, with mutex_ held on return (`lock`, the caller's, owns it throughout
// as far as it knows). A task sent straight to a worker is collected by this thread; otherwise
// it spins a little first, unlocked, since a short task's result often arrives within
// microseconds.
void task_state::await_done(unique_lock& lock) const {
  if (status_ == status::done) return;
  mutex_.unlock();
  if (claim_route()) route_->collect(const_cast<task_state&>(*this));
  thread_local spinner spin;
  spin.spin([this] { return done_.load(std::memory_order_acquire); });
  mutex_.lock();
  done_cv_.wait(lock.native(), [this]() MPROC_REQUIRES(mutex_) { return status_ == status::done; });
}

bool task_state::ready() const {
  release_route();
  lock_guard lock(mutex_);
  return status_ == status::done;
}

void task_state::wait() const {
  unique_lock lock(mutex_);
  await_done(lock);
}

bool task_state::wait_until(std::chrono::steady_clock::time_point deadline) const {
  release_route();
  unique_lock lock(mutex_);
  return done_cv_.wait_until(lock.native(), deadline,
                             [this]() MPROC_REQUIRES(mutex_) { return status_ == status::done; });
}

std::vector<char> task_state::take() {
  unique_lock lock(mutex_);
  await_done(lock);
  if (error_) std::rethrow_exception(error_);
  return std::move(value_);
}

void task_state::on_done(std::function<void()> callback) {
  unique_lock lock(mutex_);
  if (status_ != status::done) {
    callbacks_.push_back(std::move(callback));
    lock.unlock();
    release_route();
    return;
  }
  lock.unlock();
  run_callback(callback);
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
    lock_guard lock(mutex_);
    ready_.push_back(index);
  }
  cv_.notify_one();
}

bool completion_queue::pop_until(std::chrono::steady_clock::time_point deadline,
                                 std::size_t& index) {
  unique_lock lock(mutex_);
  if (!cv_.wait_until(lock.native(), deadline,
                      [this]() MPROC_REQUIRES(mutex_) { return !ready_.empty(); })) {
    return false;
  }
  index = ready_.front();
  ready_.pop_front();
  return true;
}

void throw_decode_error(std::string_view task, std::string_view type,
                        const std::exception_ptr& cause) {
  const exception_text e = describe_exception(cause);
  const std::string what = task.empty() ? std::string("a task's result")
                                        : "the result of task '" + std::string(task) + "'";
  throw serialization_error("cannot decode " + what + " as " + std::string(type) + ": " + e.type +
                            ": " + e.message);
}

wait_result wait_states(const std::vector<task_state*>& states, return_when when,
                        std::chrono::steady_clock::time_point deadline) {
  auto queue = std::make_shared<completion_queue>();
  std::size_t watched = 0;
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (states[i] == nullptr) continue;
    ++watched;
    states[i]->on_done([queue, i] { queue->push(i); });
  }
  const auto failed = [&](std::size_t i) {
    return !states[i]->cancelled() && states[i]->error() != nullptr;
  };
  for (std::size_t seen = 0; seen < watched; ++seen) {
    std::size_t i = 0;
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      i = queue->pop();
    } else if (!queue->pop_until(deadline, i)) {
      break;
    }
    if (when == return_when::first_completed) break;
    if (when == return_when::first_exception && failed(i)) break;
  }
  wait_result r;
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (states[i] == nullptr) continue;
    (states[i]->ready() ? r.done : r.not_done).push_back(i);
  }
  return r;
}

std::size_t completion_queue::pop() {
  unique_lock lock(mutex_);
  cv_.wait(lock.native(), [this]() MPROC_REQUIRES(mutex_) { return !ready_.empty(); });
  const std::size_t index = ready_.front();
  ready_.pop_front();
  return index;
}

}  // namespace mproc::detail

namespace mproc {

callback_error_handler set_callback_error_handler(callback_error_handler handler) {
  std::lock_guard lock(detail::handler_mutex());
  return std::exchange(detail::handler(), std::move(handler));
}

}  // namespace mproc
