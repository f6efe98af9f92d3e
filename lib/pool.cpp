// The pool engine: a queue of tasks, and one driver thread per worker process that feeds the
// worker through its channel, collects results, and turns every way a worker can fail into an
// error on exactly the task it was running.
//
// A driver sends a few tasks ahead (its pipeline) so that its worker never waits for the
// parent between tasks. The worker runs them strictly in order and answers each before it reads
// the next, so the oldest unanswered task is the one it was running: when the worker dies, that
// task fails and the others in its pipeline go back to the front of the queue.
//
// A task submitted while a worker is idle skips the queue and the driver: the submitting
// thread writes it into that worker's ring, and the thread that waits for its future reads the
// answer from the ring itself (three threads handing off on two cores cost more than the work).
// The worker's driver stays parked. It takes the task over when it has a reason to: more work
// queued, the pool closing, the task's deadline, the worker's death, or a waiter that hands the
// task back (a timed wait, a poll, a callback, or a receive that did not end in an answer).

#include "assert.hpp"
#include "buffers.hpp"
#include "channel/channel.hpp"
#include "launch/launcher.hpp"
#include "launch/worker_process.hpp"
#include "registry.hpp"
#include "task_memory.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/errors.hpp>
#include <mproc/pool.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace mproc::detail {

namespace {

constexpr auto exit_grace = std::chrono::seconds(5);  // for a worker told to shut down
// Tasks sent ahead to one worker at most, and how much of their running time: enough that a
// worker never waits for the parent between short tasks, little enough that the work held
// behind a task that turns out long, or by a worker that ends first, stays small. Long tasks
// are sent one at a time, as idle workers ask for them.
constexpr std::size_t max_pipeline = 16;
constexpr std::chrono::nanoseconds pipeline_span = std::chrono::milliseconds(2);

struct queued_task {
  std::uint64_t key = 0;
  std::uint32_t count = 0;
  std::vector<char> payload;
  std::shared_ptr<task_state> state;
};

struct sent_task {
  queued_task task;
  std::uint64_t id = 0;
};

// A burst of submits fills these: their nodes come from task memory, like the task states.
using task_queue = std::deque<queued_task, task_allocator<queued_task>>;
using sent_queue = std::deque<sent_task, task_allocator<sent_task>>;

// What one receive of a task's answer brought.
struct received {
  channel::io_status status = channel::io_status::ok;
  channel::message_header reply;
  std::vector<char> payload;
  std::shared_ptr<void> object;  // the result, read straight into it (then `payload` is empty)
  std::exception_ptr error;      // the receive threw (a malformed message)
};

// Receives the answer to `task` (or whatever the worker sent instead).
received receive_answer(channel::endpoint ep, const task_state& task,
                        std::chrono::steady_clock::time_point deadline) {
  received r;
  channel::result_sink sink{task.block(), nullptr};
  try {
    r.status = ep.receive(r.reply, r.payload, deadline, &sink);
  } catch (...) {
    r.error = std::current_exception();
  }
  r.object = std::move(sink.object);
  return r;
}

// Completes `task` with the result `r` brought.
void set_result(task_state& task, received& r) {
  if (r.object != nullptr) {
    task.set_object(std::move(r.object));
  } else {
    task.set_value(std::move(r.payload));
  }
}

using launch::failure_to_exception;

}  // namespace

class pool_engine {
 public:
  explicit pool_engine(const pool_options& options);
  ~pool_engine() { shutdown(true, false); }
  pool_engine(const pool_engine&) = delete;
  pool_engine& operator=(const pool_engine&) = delete;

  std::shared_ptr<task_state> enqueue(std::uint64_t key, std::string_view name, std::uint32_t count,
                                      std::vector<char> payload, const detail::block_result* block);
  void shutdown(bool wait, bool cancel_pending);
  void end_workers(bool kill);
  std::size_t workers() const noexcept { return workers_.size(); }
  start_method method() const noexcept { return launcher_->method(); }

 private:
  // Who has a worker's ring between the driver and the threads that submit and wait.
  enum class lane {
    driver,    // the driver: it sends, collects, and parks while there is nothing to do
    open,      // nobody: the worker is idle and its driver parked; a submit may take it
    direct,    // the thread that sent sent.front() straight to it (and its waiter collects)
    returned,  // that task is handed back to the driver, with what the waiter had received
  };

  struct worker final : task_state::route {
    explicit worker(pool_engine& e) : engine(e) {}
    void collect(task_state& task) override { engine.collect_direct(*this, task); }
    void release(task_state&) override { engine.release_direct(*this); }

    pool_engine& engine;
    // The worker process, or null between one and its replacement. Replaced only by the
    // driver (with mutex_), so the driver reads it freely; other threads with mutex_.
    std::unique_ptr<launch::worker_process> proc;
    std::size_t served = 0;                            // tasks run by the current process
    sent_queue sent;                                   // oldest (running) first; guarded by mutex_
    std::chrono::steady_clock::time_point head_since;  // when sent.front() started; mutex_
    std::chrono::nanoseconds task_time{0};  // recent time per task (a moving average); mutex_
    // A process being started for this slot (by the constructor or the driver), so that
    // ending the pool can kill it; guarded by mutex_.
    launch::worker_process* starting = nullptr;
    std::thread driver;
    // The driver waits on `wake` (with mutex_) while it has nothing to do; guarded by mutex_.
    std::condition_variable wake;
    bool parked = false;             // the driver waits on `wake` and nobody has woken it yet
    lane owner = lane::driver;       // who has the worker's ring; guarded by mutex_
    bool wants_lane = false;         // the driver waits to take the direct task over
    std::optional<received> answer;  // what the thread that handed it back had received
    std::optional<received> handed;  // that answer, taken over by the driver; driver only
    std::chrono::steady_clock::time_point idle_since;  // when sent last became empty
  };

  std::function<void()> exit_callback(worker& w);
  std::unique_ptr<launch::worker_process> take_process(worker& w);
  launch::clock::time_point initializer_deadline() const;
  void recycle(worker& w);
  void start_worker(worker& w);
  void start_replacement(worker& w);
  std::unique_ptr<launch::worker_process> launch_worker(worker& w);
  void initialize(worker& w, std::unique_ptr<launch::worker_process> proc);
  void kill_starting() MPROC_REQUIRES(mutex_);
  [[noreturn]] void abandon_start(std::unique_ptr<launch::worker_process> first);
  bool start_first(worker& w, std::size_t index);
  void drive(worker& w, std::size_t index);
  std::vector<queued_task> take_tasks(worker& w);
  bool await_work(worker& w, detail::unique_lock& lock) MPROC_REQUIRES(mutex_);
  void park(worker& w, detail::unique_lock& lock, std::chrono::steady_clock::time_point deadline)
      MPROC_REQUIRES(mutex_);
  static void wake(worker& w);
  static void hand_lane(worker& w, lane from, lane to) noexcept;
  void wake_all() MPROC_REQUIRES(mutex_);
  worker* pick_open(std::size_t payload_size) MPROC_REQUIRES(mutex_);
  std::chrono::steady_clock::time_point deadline_of(const worker& w) const;
  void collect_direct(worker& w, task_state& task);
  void release_direct(worker& w);
  void send_tasks(worker& w, std::vector<queued_task>& tasks);
  void collect(worker& w);
  void settle(worker& w, received& r);
  void finish_head(worker& w) MPROC_REQUIRES(mutex_);
  void retire(worker& w, const std::exception_ptr& why, const std::string& task);
  void stop(worker& w);
  bool closing();
  bool all_gone() const MPROC_REQUIRES(mutex_);
  void start_drivers(std::size_t from, std::size_t to,
                     std::unique_ptr<launch::worker_process>& first);

  pool_options options_;
  spare_buffer_user spares_;  // message buffers are reused while the pool exists
  std::unique_ptr<launch::launcher> launcher_;
  std::vector<std::unique_ptr<worker>> workers_;  // their processes end before the launcher

  detail::mutex mutex_;
  std::condition_variable gone_cv_;  // notified (with mutex_) when a worker ends
  task_queue queue_ MPROC_GUARDED_BY(mutex_);
  bool closed_ MPROC_GUARDED_BY(mutex_) = false;
  std::size_t idle_ MPROC_GUARDED_BY(mutex_) = 0;      // started workers with nothing sent
  std::size_t starting_ MPROC_GUARDED_BY(mutex_) = 0;  // first starts under way on drivers
  bool cancelling_ MPROC_GUARDED_BY(mutex_) = false;
  std::exception_ptr broken_ MPROC_GUARDED_BY(mutex_);  // why the pool stopped by itself
  std::string last_failure_ MPROC_GUARDED_BY(mutex_);   // what ended the last retired worker
  std::deque<std::chrono::steady_clock::time_point> restarts_ MPROC_GUARDED_BY(mutex_);
  std::uint64_t next_id_ MPROC_GUARDED_BY(mutex_) = 0;

  detail::mutex join_mutex_;  // serialises the joining part of shutdown
};

pool_engine::pool_engine(const pool_options& options) : options_(options) {
  registry::check();
  channel::check_direct_copies_setting();
  const start_method method = launch::resolve(options.start);
  launch::check_startable(method, "a pool");
  if (options.workers > max_workers) {
    throw start_error("cannot start a pool of " + std::to_string(options.workers) +
                      " workers: a pool has at most " + std::to_string(max_workers) +
                      " (mproc::max_workers)");
  }
  launcher_ = launch::make_launcher(method, options.allow_fork_with_threads);

  std::size_t n = options.workers != 0 ? options.workers : std::thread::hardware_concurrency();
  if (n == 0) n = 1;
  for (std::size_t i = 0; i < n; ++i) workers_.push_back(std::make_unique<worker>(*this));
  // The first worker starts here, so that what keeps every worker from starting (a refusal,
  // main without mproc::init, a throwing initializer) is thrown here. The others start on their
  // drivers from its hello on: initializers (one that loads a model may take a while) run at
  // once, and the first task does not wait for them.
  worker& w0 = *workers_.front();
  std::unique_ptr<launch::worker_process> first;
  try {
    launcher_->start_watching();
    first = launch_worker(w0);
  } catch (...) {
    launcher_->stop();
    throw;
  }
  start_drivers(1, n, first);
  try {
    initialize(w0, std::move(first));
  } catch (...) {
    abandon_start(nullptr);
  }
  {
    detail::lock_guard lock(mutex_);
    ++idle_;
    // Open at once: the first submit goes straight to it, not through a queue that would make
    // an on-demand pool start a second worker.
    if (options_.max_tasks_per_worker == 0) w0.owner = lane::open;
  }
  start_drivers(0, 1, first);
}

// Ends a start that failed: drivers stop (a worker one of them is starting is killed), every
// worker and `first` end, and what was thrown is thrown again.
void pool_engine::abandon_start(std::unique_ptr<launch::worker_process> first) {
  const std::exception_ptr why = std::current_exception();
  {
    detail::lock_guard lock(mutex_);
    closed_ = true;
    cancelling_ = true;
    kill_starting();
    wake_all();
  }
  for (auto& w : workers_) {
    if (w->driver.joinable()) w->driver.join();  // it stops its worker
  }
  for (auto& w : workers_) take_process(*w).reset();
  first.reset();
  launcher_->stop();
  std::rethrow_exception(why);
}

// Kills every process that a slot is starting (mutex_ held): its start fails at once.
void pool_engine::kill_starting() {
  for (auto& w : workers_) {
    if (w->starting != nullptr) w->starting->kill();
  }
}

// Starts `w`'s first process on its driver (`index` counts from 0): at once, or on demand once
// more tasks are queued than workers are starting. Returns false if the pool closed first. A
// failure stops the pool: queued and later tasks fail with it, as the constructor would have.
bool pool_engine::start_first(worker& w, std::size_t index) {
  {
    detail::unique_lock lock(mutex_);
    if (options_.start_on_demand) {
      while (!closed_ && queue_.size() <= starting_) park(w, lock, channel::ring::no_deadline());
      if (queue_.size() <= starting_) return false;
    }
    if (closed_ && queue_.empty()) return false;
    ++starting_;
  }
  std::exception_ptr failed;
  try {
    start_worker(w);
  } catch (const std::exception& e) {
    failed = std::make_exception_ptr(
        start_error("the pool stopped: its worker " + std::to_string(index + 1) + " of " +
                    std::to_string(workers_.size()) + " did not start: " + e.what()));
  }
  task_queue dropped;
  {
    detail::lock_guard lock(mutex_);
    --starting_;
    if (!failed) {
      ++idle_;
      return true;
    }
    if (!broken_) broken_ = failed;
    closed_ = true;
    dropped.swap(queue_);
    failed = broken_;
    wake_all();
  }
  for (queued_task& t : dropped) t.state->set_error(failed);
  return false;
}

// Starts the driver threads of workers [from, to). If the system refuses one, the pool's start
// is abandoned (see abandon_start; `first` ends too) and the refusal is thrown.
void pool_engine::start_drivers(std::size_t from, std::size_t to,
                                std::unique_ptr<launch::worker_process>& first) {
  for (std::size_t i = from; i < to; ++i) {
    worker* raw = workers_[i].get();
    try {
      raw->driver = launch::start_thread(
          [this, raw, i] { drive(*raw, i); },
          "drives worker " + std::to_string(i + 1) + " of " + std::to_string(workers_.size()));
    } catch (...) {
      abandon_start(std::move(first));
    }
  }
}

// What runs when a worker process of `w` ends: whoever waits for it looks again.
std::function<void()> pool_engine::exit_callback(worker& w) {
  return [this, &w] {
    detail::lock_guard lock(mutex_);
    wake(w);
    gone_cv_.notify_all();
  };
}

// Takes `w`'s process out of the pool; ending it is the caller's (without mutex_).
std::unique_ptr<launch::worker_process> pool_engine::take_process(worker& w) {
  detail::lock_guard lock(mutex_);
  return std::move(w.proc);
}

launch::clock::time_point pool_engine::initializer_deadline() const {
  if (options_.task_timeout.count() <= 0) return channel::ring::no_deadline();
  return launch::clock::now() + options_.task_timeout;
}

void pool_engine::start_replacement(worker& w) {
  task_queue dropped;
  std::exception_ptr broken;
  {
    detail::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    while (!restarts_.empty() && now - restarts_.front() > std::chrono::minutes(1)) {
      restarts_.pop_front();
    }
    if (options_.max_restarts_per_minute != 0 &&
        restarts_.size() >= options_.max_restarts_per_minute) {
      if (!broken_) {
        broken_ = std::make_exception_ptr(start_error(
            "the pool stopped: workers were replaced " + std::to_string(restarts_.size()) +
            " times within a minute (pool_options::max_restarts_per_minute); the last one " +
            "ended so: " + last_failure_));
      }
      closed_ = true;
      dropped.swap(queue_);
      broken = broken_;
      wake_all();
    } else {
      restarts_.push_back(now);
    }
  }
  if (broken) {
    for (queued_task& t : dropped) t.state->set_error(broken);
    std::rethrow_exception(broken);
  }
  start_worker(w);
}

// Replaces a worker that has served max_tasks_per_worker tasks; not a restart after a failure.
void pool_engine::recycle(worker& w) {
  stop(w);
  start_worker(w);
}

// Starts one worker and waits until it is ready for tasks.
void pool_engine::start_worker(worker& w) { initialize(w, launch_worker(w)); }

// Starts a process for `w` and waits for its hello; it counts as `w.starting` until
// `initialize` ends (it is killed, and its start fails, if the pool is cancelled meanwhile).
std::unique_ptr<launch::worker_process> pool_engine::launch_worker(worker& w) {
  std::unique_ptr<launch::worker_process> proc = launcher_->start_worker(exit_callback(w));
  {
    detail::lock_guard lock(mutex_);
    w.starting = proc.get();
    if (cancelling_) proc->kill();
  }
  try {
    proc->handshake(options_.start_timeout);
  } catch (...) {
    detail::lock_guard lock(mutex_);
    w.starting = nullptr;
    throw;
  }
  return proc;
}

// Runs the initializer in `w`'s new process `proc`, then makes it `w`'s worker.
void pool_engine::initialize(worker& w, std::unique_ptr<launch::worker_process> proc) {
  try {
    proc->send_initializer(options_.initializer);
    proc->await_initializer(options_.initializer, initializer_deadline());
  } catch (...) {
    detail::lock_guard lock(mutex_);
    w.starting = nullptr;
    throw;
  }
  detail::lock_guard lock(mutex_);
  w.starting = nullptr;
  w.proc = std::move(proc);
  w.served = 0;
}

// Takes the tasks `w` sends next. With nothing in flight it waits for one (returning none once
// the pool is closed and drained). It takes more only while no other worker is idle, up to
// `max_pipeline` tasks and `pipeline_span` of their recent running time, and only what its ring
// holds without waiting: a send that waits while the worker waits to send a large result would
// deadlock.
std::vector<queued_task> pool_engine::take_tasks(worker& w) {
  std::vector<queued_task> taken;
  detail::unique_lock lock(mutex_);
  if (w.sent.empty() || w.owner == lane::direct || w.owner == lane::returned) {
    if (!await_work(w, lock)) return taken;
    // A direct task taken over may be a long one: nothing queues behind it until it is done.
    if (!w.sent.empty()) return taken;
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  // Another idle worker should get the next task; so should anyone, if tasks are long or their
  // length is not known yet.
  if (!w.proc || w.task_time.count() == 0 || idle_ > (w.sent.empty() ? 1U : 0U)) return taken;
  const auto by_time = static_cast<std::size_t>(pipeline_span / w.task_time);
  const std::size_t limit = std::min(max_pipeline, by_time);
  const std::size_t held = w.sent.size() + taken.size();
  std::size_t room = limit > held ? limit - held : 0;
  if (options_.max_tasks_per_worker != 0) {
    const std::size_t left = options_.max_tasks_per_worker -
                             std::min(options_.max_tasks_per_worker, w.served + w.sent.size());
    room = std::min(room, left > taken.size() ? left - taken.size() : 0);
  }
  channel::endpoint ep = w.proc->endpoint();
  std::size_t bytes = 0;
  for (const queued_task& t : taken) bytes += sizeof(channel::message_header) + t.payload.size();
  while (room > 0 && !queue_.empty() && ep.fits(bytes + queue_.front().payload.size())) {
    bytes += sizeof(channel::message_header) + queue_.front().payload.size();
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
    --room;
  }
  return taken;
}

// Waits (with `lock` held) until `w` has work: a queued task, or the direct task to take over.
// Returns false once the pool is closed and `w` has nothing left. Afterwards the driver owns
// the worker's ring again: `w` is neither open nor direct.
bool pool_engine::await_work(worker& w, detail::unique_lock& lock) {
  for (;;) {
    const bool gone = w.proc && w.proc->gone();
    if (w.owner == lane::direct || w.owner == lane::returned) {
      w.wants_lane = false;
      if (w.owner == lane::returned) {
        hand_lane(w, lane::returned, lane::driver);
        w.handed.swap(w.answer);
        return true;
      }
      const auto deadline = deadline_of(w);
      const bool want =
          !queue_.empty() || closed_ || gone || std::chrono::steady_clock::now() >= deadline;
      if (want && w.sent.front().task.state->claim_route()) {
        hand_lane(w, lane::direct, lane::driver);
        return true;
      }
      // Being sent or collected by another thread, which wakes this one when it is done.
      w.wants_lane = want;
      park(w, lock, want ? channel::ring::no_deadline() : deadline);
      continue;
    }
    if (w.owner == lane::open) hand_lane(w, lane::open, lane::driver);
    if (gone && (!closed_ || !queue_.empty())) {
      // The worker died while idle: replace it before a task is sent to it (a task queued
      // meanwhile must not go to the dead one, where it would fail without having run).
      // The caller's lock owns mutex_ again when this returns.
      mutex_.unlock();
      retire(w, nullptr, "(none: it was idle)");
      try {
        start_replacement(w);
      } catch (...) {
        // The next task starts a worker and reports why that fails.
      }
      mutex_.lock();
      continue;
    }
    if (!w.sent.empty() || !queue_.empty()) return true;
    if (closed_) return false;
    if (w.proc != nullptr && options_.max_tasks_per_worker == 0) {
      hand_lane(w, lane::driver, lane::open);
    }
    park(w, lock, channel::ring::no_deadline());
  }
}

void pool_engine::park(worker& w, detail::unique_lock& lock,
                       std::chrono::steady_clock::time_point deadline) {
  w.parked = true;
  if (deadline == channel::ring::no_deadline()) {
    w.wake.wait(lock.native());
  } else {
    w.wake.wait_until(lock.native(), deadline);
  }
  w.parked = false;
}

// Wakes `w`'s driver if it is parked (mutex_ held).
void pool_engine::wake(worker& w) {
  if (!w.parked) return;
  w.parked = false;
  w.wake.notify_one();
}

// Moves `w`'s ring from one holder to the next (mutex_ held); any other move is a bug.
void pool_engine::hand_lane(worker& w, lane from, lane to) noexcept {
  MPROC_ASSERT(w.owner == from, "a worker's ring changed hands out of turn");
  (void)from;
  w.owner = to;
}

// Wakes every parked driver (mutex_ held).
void pool_engine::wake_all() {
  for (auto& w : workers_) wake(*w);
}

// Returns the idle worker a task of `payload_size` bytes can be sent to straight away, or null
// (mutex_ held). The one idle the shortest time is likely still spinning on its ring.
pool_engine::worker* pool_engine::pick_open(std::size_t payload_size) {
  worker* best = nullptr;
  for (auto& w : workers_) {
    if (w->owner != lane::open || !w->proc || w->proc->gone()) continue;
    if (!w->proc->endpoint().fits(payload_size)) continue;
    if (best == nullptr || w->idle_since > best->idle_since) best = w.get();
  }
  return best;
}

// Returns when the oldest task in flight on `w` times out (no_deadline without a task_timeout).
std::chrono::steady_clock::time_point pool_engine::deadline_of(const worker& w) const {
  if (options_.task_timeout.count() <= 0) return channel::ring::no_deadline();
  return w.head_since + options_.task_timeout;
}

// Collects a task sent straight to `w` in the thread that waits for it (which claimed it). An
// answer completes it; anything else goes back to the driver, which retires the worker.
void pool_engine::collect_direct(worker& w, task_state& task) {
  std::optional<channel::endpoint> ep;
  std::chrono::steady_clock::time_point deadline;
  {
    detail::lock_guard lock(mutex_);
    ep.emplace(w.proc->endpoint());
    deadline = deadline_of(w);
  }
  received r = receive_answer(*ep, task, deadline);
  const bool answered = !r.error && r.status == channel::io_status::ok &&
                        (r.reply.kind == channel::message_kind::result ||
                         r.reply.kind == channel::message_kind::failure);
  {
    detail::lock_guard lock(mutex_);
    if (!answered || r.reply.id != w.sent.front().id) {
      w.answer = std::move(r);
      hand_lane(w, lane::direct, lane::returned);
      wake(w);
      return;
    }
    finish_head(w);
    if (w.wants_lane || !queue_.empty() || closed_) {
      hand_lane(w, lane::direct, lane::driver);
      wake(w);
    } else {
      hand_lane(w, lane::direct, lane::open);  // its driver stays parked
    }
  }
  // `w` may be gone from here on: its driver has nothing left to wait for.
  if (r.reply.kind == channel::message_kind::result) {
    set_result(task, r);
  } else {
    task.set_error(failure_to_exception(r.reply, r.payload));
  }
}

// Hands a task sent straight to `w` back to its driver (its waiter claimed it and will not read).
void pool_engine::release_direct(worker& w) {
  detail::lock_guard lock(mutex_);
  hand_lane(w, lane::direct, lane::returned);
  wake(w);
}

// Sends `tasks` to `w` in order; a cancelled one is dropped. A task sent counts as started: it
// can no longer be cancelled (one that goes back to the queue after its worker died stays so).
// A send that fails (the worker died) leaves the rest in the pipeline, where retire finds them.
void pool_engine::send_tasks(worker& w, std::vector<queued_task>& tasks) {
  if (tasks.empty()) return;  // a direct task taken over: nothing more to send
  struct outgoing {
    channel::message_header header;
    const char* payload;  // the buffer stays put when its vector moves into w.sent
  };
  std::vector<outgoing> out;
  out.reserve(tasks.size());
  std::erase_if(tasks, [](queued_task& t) {
    t.state->try_start();
    return t.state->ready();  // cancelled while queued
  });
  {
    // One lock for the whole batch: the caller and the other drivers contend for it.
    detail::lock_guard lock(mutex_);
    for (queued_task& t : tasks) {
      channel::message_header h;
      h.kind = channel::message_kind::task;
      h.key = t.key;
      h.count = t.count;
      h.size = t.payload.size();
      h.id = ++next_id_;
      out.push_back({h, t.payload.data()});
      if (w.sent.empty()) {
        --idle_;
        w.head_since = std::chrono::steady_clock::now();
      }
      w.sent.push_back(sent_task{std::move(t), h.id});
    }
  }
  channel::endpoint ep = w.proc->endpoint();
  for (const outgoing& o : out) {
    if (ep.send(o.header, o.payload) != channel::io_status::ok) break;
  }
}

// Removes the oldest task in flight (mutex_ held); the next one, already in the worker's ring,
// starts now.
void pool_engine::finish_head(worker& w) {
  const auto now = std::chrono::steady_clock::now();
  const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(now - w.head_since);
  w.task_time = w.task_time.count() == 0 ? took : (w.task_time * 7 + took) / 8;
  w.sent.front().task.state->set_ran(took);
  recycle_buffer(std::move(w.sent.front().task.payload));
  w.sent.pop_front();
  ++w.served;
  if (w.sent.empty()) {
    ++idle_;
    w.idle_since = now;
  } else {
    w.head_since = now;
  }
}

void pool_engine::drive(worker& w, std::size_t index) {
  if (!w.proc && !start_first(w, index)) {
    stop(w);
    return;
  }
  for (;;) {
    std::vector<queued_task> tasks = take_tasks(w);
    if (tasks.empty() && w.sent.empty()) break;  // closed, and nothing left to do
    if (!tasks.empty() && !w.proc) {
      try {
        start_replacement(w);
      } catch (...) {
        for (queued_task& t : tasks) t.state->set_error(std::current_exception());
        continue;
      }
    }
    send_tasks(w, tasks);
    if (!w.sent.empty()) collect(w);
    if (w.proc && w.sent.empty() && options_.max_tasks_per_worker != 0 &&
        w.served >= options_.max_tasks_per_worker && !closing()) {
      try {
        recycle(w);
      } catch (...) {
        // The next task starts a worker and reports why that fails.
      }
    }
    if (!w.proc && !closing()) {
      // Replace a failed worker at once, so that the pool is whole again before more work
      // comes; if that fails, the next task tries again and reports why.
      try {
        start_replacement(w);
      } catch (...) {
      }
    }
  }
  stop(w);
}

bool pool_engine::closing() {
  detail::lock_guard lock(mutex_);
  return closed_;
}

// Waits for the answer to the oldest task in flight, until its deadline (or takes what the
// thread that handed a direct task back had received), and settles the task.
void pool_engine::collect(worker& w) {
  std::optional<received> answer;
  answer.swap(w.handed);
  // Only this thread changes w.sent now, and it holds the task in flight.
  received r = answer
                   ? std::move(*answer)
                   : receive_answer(w.proc->endpoint(), *w.sent.front().task.state, deadline_of(w));
  settle(w, r);
}

// Completes the oldest task in flight with what its worker sent, or retires the worker.
void pool_engine::settle(worker& w, received& r) {
  sent_task& head = w.sent.front();  // only this thread changes w.sent now
  // Only a failure needs the task's name: looking it up takes the registry's lock.
  const std::uint64_t key = head.task.key;
  const auto name = [key] { return registry::name_of(key); };
  if (r.error) {
    retire(w, r.error, name());
  } else if (r.status == channel::io_status::ok && r.reply.id != head.id) {
    retire(w,
           std::make_exception_ptr(serialization_error(
               "task '" + name() + "': the worker answered another task; it was replaced")),
           name());
  } else if (r.status == channel::io_status::ok &&
             (r.reply.kind == channel::message_kind::result ||
              r.reply.kind == channel::message_kind::failure)) {
    const std::shared_ptr<task_state> state = head.task.state;
    {
      detail::lock_guard lock(mutex_);
      finish_head(w);
    }
    if (r.reply.kind == channel::message_kind::result) {
      set_result(*state, r);
    } else {
      state->set_error(failure_to_exception(r.reply, r.payload));
    }
  } else if (r.status == channel::io_status::timed_out) {
    retire(w, std::make_exception_ptr(task_timeout(options_.task_timeout, name())), name());
  } else if (r.status == channel::io_status::corrupt) {
    retire(w,
           std::make_exception_ptr(serialization_error(
               "task '" + name() +
               "': its worker overwrote the positions in its shared memory (a bug in a task "
               "that writes through a stray pointer?); it was killed and replaced")),
           name());
  } else {
    retire(w, nullptr, name());
  }
}

// Ends the worker process after a failure and fails the task it was running: `why` if given,
// otherwise `worker_crashed` with how the process ended (or `cancelled_error` during a
// cancelling shutdown). The tasks behind it never ran: they go back to the front of the queue
// (or are cancelled with the pool). The driver starts a replacement afterwards.
void pool_engine::retire(worker& w, const std::exception_ptr& why, const std::string& task) {
  std::unique_ptr<launch::worker_process> proc = take_process(w);
  const int pid = proc->pid();
  const auto st = proc->end();
  proc.reset();
  sent_queue sent;
  bool cancelling = false;
  {
    detail::lock_guard lock(mutex_);
    sent.swap(w.sent);
    if (!sent.empty()) ++idle_;
    cancelling = cancelling_;
  }
  std::exception_ptr error = why;
  if (cancelling) {
    error = std::make_exception_ptr(cancelled_error());
  } else if (!error) {
    error = std::make_exception_ptr(worker_crashed(pid, st.code, st.signal, task));
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    detail::lock_guard lock(mutex_);
    last_failure_ = e.what();
  } catch (...) {
  }
  if (sent.empty()) return;
  sent.front().task.state->set_error(error);
  sent.pop_front();
  if (sent.empty()) return;
  if (cancelling) {
    for (sent_task& t : sent) t.task.state->set_error(error);
    return;
  }
  {
    detail::lock_guard lock(mutex_);
    for (; !sent.empty(); sent.pop_back()) queue_.push_front(std::move(sent.back().task));
    wake_all();
  }
}

// Asks `w`'s worker to exit (it is ended if it does not, within a grace).
void pool_engine::stop(worker& w) {
  if (std::unique_ptr<launch::worker_process> proc = take_process(w)) {
    proc->request_exit(exit_grace);
  }
}

std::shared_ptr<task_state> pool_engine::enqueue(std::uint64_t key, std::string_view name,
                                                 std::uint32_t count, std::vector<char> payload,
                                                 const detail::block_result* block) {
  // With its reference counts (and a vtable pointer) beside it.
  static_assert(sizeof(task_state) + 4 * sizeof(void*) <= task_block_bytes,
                "a task state no longer fits a block of task memory");
  auto state = std::allocate_shared<task_state>(task_allocator<task_state>{}, count, name, block);
  worker* w = nullptr;
  std::optional<channel::endpoint> ep;
  channel::message_header h;
  {
    detail::lock_guard lock(mutex_);
    if (broken_) std::rethrow_exception(broken_);
    if (closed_) throw pool_closed();
    // Queued tasks go first; otherwise an idle worker takes this one straight from this thread.
    if (queue_.empty()) w = pick_open(payload.size());
    if (w == nullptr) {
      queue_.push_back(queued_task{key, count, std::move(payload), state});
      // Every parked driver looks: one whose direct task is long must not be the only one.
      wake_all();
      return state;
    }
    state->try_start();
    state->begin_route(w);
    h.kind = channel::message_kind::task;
    h.key = key;
    h.count = count;
    h.size = payload.size();
    h.id = ++next_id_;
    hand_lane(*w, lane::open, lane::direct);
    --idle_;
    w->head_since = std::chrono::steady_clock::now();
    // The head task of a worker never goes back to the queue: it needs no payload there.
    w->sent.push_back(sent_task{queued_task{key, count, {}, state}, h.id});
    ep.emplace(w->proc->endpoint());
  }
  // The worker's ring is empty and the message fits: this does not wait for the worker.
  const bool sent = ep->send(h, payload.data()) == channel::io_status::ok;
  recycle_buffer(std::move(payload));
  detail::lock_guard lock(mutex_);
  state->end_route_send();
  // The driver finds out what happened.
  if (!sent && state->claim_route()) hand_lane(*w, lane::direct, lane::returned);
  // With a task_timeout, the parked driver learns the deadline it has to enforce.
  if (w->wants_lane || w->owner == lane::returned || options_.task_timeout.count() > 0) wake(*w);
  return state;
}

void pool_engine::shutdown(bool wait, bool cancel_pending) {
  task_queue dropped;
  {
    detail::lock_guard lock(mutex_);
    closed_ = true;
    wake_all();
    if (cancel_pending) {
      cancelling_ = true;
      dropped.swap(queue_);
      for (auto& w : workers_) {
        if (!w->sent.empty() && w->proc) w->proc->kill();
      }
      kill_starting();
    }
  }
  for (queued_task& t : dropped) t.state->cancel();
  if (!wait) return;
  detail::lock_guard join_lock(join_mutex_);
  for (auto& w : workers_) {
    if (w->driver.joinable()) w->driver.join();
  }
  launcher_->stop();
}

// Ends every worker now (SIGKILL, or SIGTERM with SIGKILL after a grace for one that does not
// end) and closes the pool: queued tasks are cancelled, running ones fail with cancelled_error
// as their drivers find their workers gone.
void pool_engine::end_workers(bool kill) {
  task_queue dropped;
  {
    detail::unique_lock lock(mutex_);
    closed_ = true;
    cancelling_ = true;
    dropped.swap(queue_);
    wake_all();
    kill_starting();
    for (auto& w : workers_) {
      if (!w->proc) continue;
      if (kill) {
        w->proc->kill();
      } else {
        w->proc->terminate();
      }
    }
    if (!kill && !gone_cv_.wait_for(lock.native(), exit_grace,
                                    [this]() MPROC_REQUIRES(mutex_) { return all_gone(); })) {
      for (auto& w : workers_) {
        if (w->proc) w->proc->kill();  // SIGTERM was not enough
      }
    }
  }
  for (queued_task& t : dropped) t.state->cancel();
}

// Whether no worker process runs any more (mutex_ held).
bool pool_engine::all_gone() const {
  return std::all_of(workers_.begin(), workers_.end(),
                     [](const std::unique_ptr<worker>& w) { return !w->proc || w->proc->gone(); });
}

}  // namespace mproc::detail

namespace mproc {

process_pool::process_pool(const pool_options& options)
    : engine_(std::make_unique<detail::pool_engine>(options)) {}

process_pool::~process_pool() {
  // Unwinding: whoever would read the results is leaving, so nobody waits for running tasks.
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  engine_->shutdown(true, unwinding);
}

void process_pool::shutdown(bool wait, bool cancel_pending) {
  engine_->shutdown(wait, cancel_pending);
}

void process_pool::terminate_workers() { engine_->end_workers(false); }

void process_pool::kill_workers() { engine_->end_workers(true); }

std::size_t process_pool::workers() const noexcept { return engine_->workers(); }

mproc::start_method process_pool::start_method() const noexcept { return engine_->method(); }

std::shared_ptr<detail::task_state> process_pool::enqueue(std::uint64_t key, std::string_view name,
                                                          std::uint32_t count,
                                                          std::vector<char> payload,
                                                          const detail::block_result* block) {
  return engine_->enqueue(key, name, count, std::move(payload), block);
}

}  // namespace mproc
