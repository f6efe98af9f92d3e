// The pool engine: a queue of tasks, and one driver thread per worker process that feeds the
// worker through its channel, collects results, and turns every way a worker can fail into an
// error on exactly the task it held.

#include "channel/channel.hpp"
#include "init_state.hpp"
#include "launch/launcher.hpp"
#include "platform/process.hpp"
#include "registry.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/errors.hpp>
#include <mproc/pool.hpp>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace mproc::detail {

namespace {

constexpr std::size_t ring_capacity = std::size_t{1} << 20;
constexpr auto exit_grace = std::chrono::seconds(5);  // for a worker told to shut down

struct queued_task {
  std::uint64_t key = 0;
  std::uint32_t count = 0;
  std::vector<char> payload;
  std::shared_ptr<task_state> state;
};

// Turns a failure message from a worker into the exception its future rethrows.
std::exception_ptr failure_to_exception(const channel::message_header& h,
                                        const std::vector<char>& payload) {
  channel::failure_text f;
  try {
    f = channel::decode_failure(payload.data(), payload.size());
  } catch (...) {
    return std::current_exception();
  }
  std::string type = std::move(f.type);
  std::string message = std::move(f.message);
  switch (static_cast<channel::failure_code>(h.code)) {
    case channel::failure_code::remote_exception:
      return std::make_exception_ptr(remote_error(std::move(type), std::move(message)));
    case channel::failure_code::unknown_task:
      return std::make_exception_ptr(
          start_error("cannot run task '" + registry::name_of(h.key) + "': " + message));
    case channel::failure_code::decode_failed:
    case channel::failure_code::encode_failed:
      break;
  }
  return std::make_exception_ptr(serialization_error(message));
}

}  // namespace

class pool_engine {
 public:
  explicit pool_engine(const pool_options& options);
  ~pool_engine() { shutdown(true, false); }
  pool_engine(const pool_engine&) = delete;
  pool_engine& operator=(const pool_engine&) = delete;

  std::shared_ptr<task_state> enqueue(std::uint64_t key, std::uint32_t count,
                                      std::vector<char> payload);
  void shutdown(bool wait, bool cancel_pending);
  std::size_t workers() const noexcept { return workers_.size(); }
  start_method method() const noexcept { return launcher_->method(); }

 private:
  struct worker {
    std::shared_ptr<channel::segment> seg;
    int lifeline = -1;                    // write end: the worker exits once it is closed
    std::string secret;                   // what the worker must send back in its hello
    int pid = -1;                         // guarded by mutex_ once drivers run
    int handle = -1;                      // names the process for kills; guarded by mutex_
    std::size_t served = 0;               // tasks run by the current process
    std::shared_ptr<task_state> current;  // guarded by mutex_
    std::thread driver;
  };

  void launch(worker& w);
  platform::exit_status end_process(worker& w);
  static void cut_lifeline(worker& w) noexcept;
  void await_hello(worker& w);
  void send_initializer(worker& w);
  void await_initializer(worker& w);
  void recycle(worker& w);
  void start_worker(worker& w);
  void start_replacement(worker& w);
  void drive(worker& w);
  void run(worker& w, queued_task& task);
  void retire(worker& w, const std::exception_ptr& why, const std::string& task);
  void stop(worker& w);
  std::optional<queued_task> next_task();
  bool closing();
  void kill_all() noexcept;

  pool_options options_;
  std::unique_ptr<launch::launcher> launcher_;
  platform::exit_watcher watcher_;
  std::vector<std::unique_ptr<worker>> workers_;

  std::mutex mutex_;
  std::condition_variable queue_cv_;
  std::deque<queued_task> queue_;  // guarded by mutex_
  bool closed_ = false;            // guarded by mutex_
  bool cancelling_ = false;        // guarded by mutex_
  std::exception_ptr broken_;      // why the pool stopped by itself; guarded by mutex_
  std::string last_failure_;       // what ended the last retired worker; guarded by mutex_
  std::deque<std::chrono::steady_clock::time_point> restarts_;  // guarded by mutex_
  std::uint64_t next_id_ = 0;                                   // guarded by mutex_

  std::mutex join_mutex_;  // serialises the joining part of shutdown
};

pool_engine::pool_engine(const pool_options& options) : options_(options) {
  registry::check();
  if (launch::unclaimed_spawned_worker()) {
    // A spawned worker whose main did not hand control to mproc::init reached a pool: starting
    // workers from here would re-run the program again and again.
    throw start_error(
        "cannot start a pool inside a spawned worker: this program was started as an mproc "
        "worker, but main did not call mproc::init(argc, argv) first. Add it as the first line "
        "of main.");
  }
  const start_method method = launch::resolve(options.start);
  if ((method == start_method::spawn || method == start_method::forkserver) && !initialized()) {
    throw start_error("cannot start a pool with the " + std::string(to_string(method)) +
                      " method: mproc::init(argc, argv) was not called. Add it as the first "
                      "line of main, so that spawned processes enter mproc's loop instead of "
                      "running the program.");
  }
  launcher_ = launch::make_launcher(method, options.allow_fork_with_threads);
  // A segment's name exists only while its worker starts; one left by a process killed in that
  // moment is removed by the next pool on the machine.
  platform::remove_orphaned_segments("mproc-");

  std::size_t n = options.workers != 0 ? options.workers : std::thread::hardware_concurrency();
  if (n == 0) n = 1;
  for (std::size_t i = 0; i < n; ++i) workers_.push_back(std::make_unique<worker>());
  try {
    // Workers start before this pool starts any thread of its own.
    for (auto& w : workers_) launch(*w);
    watcher_.start();
    for (auto& w : workers_) await_hello(*w);
    // All workers initialise at once: an initializer that loads a model may take a while.
    for (auto& w : workers_) send_initializer(*w);
    for (auto& w : workers_) await_initializer(*w);
  } catch (...) {
    kill_all();
    watcher_.stop();
    launcher_->stop();
    throw;
  }
  for (auto& w : workers_) {
    worker* raw = w.get();
    w->driver = std::thread([this, raw] { drive(*raw); });
  }
}

void pool_engine::launch(worker& w) {
  w.seg = channel::segment::create(ring_capacity);
  // The worker gets the secret through a channel only it and this process hold (its lifeline,
  // or the zygote's request pipe): a process that merely opened the segment cannot pass for it.
  w.secret = platform::random_hex(mproc::worker::secret_size / 2);
  w.served = 0;
  const launch::launcher::started started = launcher_->launch(w.seg, w.secret);
  {
    std::lock_guard lock(mutex_);
    w.pid = started.pid;
    w.lifeline = started.lifeline;
    w.handle = platform::open_handle(started.pid);
  }
  const std::error_code ec =
      watcher_.watch(started.pid, [seg = w.seg] { seg->mark_worker_gone(); });
  if (ec || w.handle < 0) {
    end_process(w);
    throw start_error("cannot watch worker " + std::to_string(started.pid) + ": " +
                      (ec ? ec.message() : std::string("no process handle")));
  }
}

// Kills the worker's process if it still runs, reaps it, and releases what it held.
platform::exit_status pool_engine::end_process(worker& w) {
  std::lock_guard lock(mutex_);
  platform::exit_status st;
  if (w.pid > 0) {
    platform::kill_handle(w.handle);  // a no-op for a process that has ended
    st = launcher_->reap(w.pid);      // prompt: the process is dead or dying
  }
  platform::close_fd(w.handle);
  w.handle = -1;
  w.pid = -1;
  cut_lifeline(w);
  return st;
}

void pool_engine::cut_lifeline(worker& w) noexcept {
  if (w.lifeline < 0) return;
  platform::unregister_lifeline(w.lifeline);
  platform::close_fd(w.lifeline);
  w.lifeline = -1;
}

void pool_engine::await_hello(worker& w) {
  channel::endpoint ep = w.seg->parent_endpoint();
  channel::message_header h;
  std::vector<char> payload;
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  const channel::io_status s = ep.receive(h, payload, deadline);
  w.seg->unlink();  // the worker has it mapped (or will never need it)
  const int pid = w.pid;
  std::string what;
  if (s == channel::io_status::ok && h.kind == channel::message_kind::hello) {
    if (std::string(payload.begin(), payload.end()) != w.secret) {
      what =
          "its first message does not carry the secret it was given; another process may be "
          "tampering with the pool's shared memory";
    } else if (h.key != registry::digest()) {
      what = "it runs a different set of tasks (was the executable file replaced?)";
    } else {
      return;
    }
    end_process(w);
  } else if (s == channel::io_status::timed_out) {
    end_process(w);
    what = "it did not reach the worker loop within " +
           std::to_string(options_.start_timeout.count()) + " ms";
  } else if (s == channel::io_status::peer_gone) {
    const platform::exit_status st = end_process(w);
    what = st.signal ? "it was killed by " + platform::signal_name(*st.signal)
                     : "it exited with code " + std::to_string(st.code.value_or(-1));
    what += " before reaching the worker loop";
  } else {
    end_process(w);
    what = "it sent an unexpected first message";
  }
  std::string fix;
  if (method() == start_method::spawn) {
    fix =
        ". A spawned worker runs this program again: mproc::init(argc, argv) must be the "
        "first line of main";
  }
  throw start_error("cannot start worker (pid " + std::to_string(pid) + "): " + what + fix);
}

void pool_engine::start_replacement(worker& w) {
  std::deque<queued_task> dropped;
  std::exception_ptr broken;
  {
    std::lock_guard lock(mutex_);
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
    } else {
      restarts_.push_back(now);
    }
  }
  if (broken) {
    queue_cv_.notify_all();
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
void pool_engine::start_worker(worker& w) {
  launch(w);
  await_hello(w);
  send_initializer(w);
  await_initializer(w);
}

void pool_engine::send_initializer(worker& w) {
  if (options_.initializer.empty()) return;
  channel::message_header h;
  h.kind = channel::message_kind::task;
  h.key = options_.initializer.key();
  h.count = 1;
  h.size = options_.initializer.arguments().size();
  // A send fails only if the worker died; await_initializer then reports how.
  (void)w.seg->parent_endpoint().send(h, options_.initializer.arguments().data());
}

void pool_engine::await_initializer(worker& w) {
  if (options_.initializer.empty()) return;
  channel::endpoint ep = w.seg->parent_endpoint();
  channel::message_header reply;
  std::vector<char> payload;
  auto deadline = channel::ring::no_deadline();
  if (options_.task_timeout.count() > 0) {
    deadline = std::chrono::steady_clock::now() + options_.task_timeout;
  }
  const int pid = w.pid;
  const std::string name = registry::name_of(options_.initializer.key());
  std::string what;
  try {
    const channel::io_status s = ep.receive(reply, payload, deadline);
    if (s == channel::io_status::ok && reply.kind == channel::message_kind::result) return;
    if (s == channel::io_status::ok && reply.kind == channel::message_kind::failure) {
      try {
        std::rethrow_exception(failure_to_exception(reply, payload));
      } catch (const std::exception& e) {
        what = std::string("it threw ") + e.what();
      }
      end_process(w);
    } else if (s == channel::io_status::timed_out) {
      end_process(w);
      what = "it ran longer than task_timeout";
    } else {
      const platform::exit_status st = end_process(w);
      what = st.signal ? "its worker was killed by " + platform::signal_name(*st.signal)
                       : "its worker exited with code " + std::to_string(st.code.value_or(-1));
    }
  } catch (const std::exception& e) {
    end_process(w);
    what = e.what();
  }
  throw start_error("cannot start worker (pid " + std::to_string(pid) + "): its initializer '" +
                    name + "' failed: " + what);
}

std::optional<queued_task> pool_engine::next_task() {
  std::unique_lock lock(mutex_);
  queue_cv_.wait(lock, [this] { return !queue_.empty() || closed_; });
  if (queue_.empty()) return std::nullopt;
  queued_task t = std::move(queue_.front());
  queue_.pop_front();
  return t;
}

void pool_engine::drive(worker& w) {
  while (std::optional<queued_task> task = next_task()) {
    if (!task->state->try_start()) continue;  // cancelled while queued
    if (w.pid < 0) {
      try {
        start_replacement(w);
      } catch (...) {
        task->state->set_error(std::current_exception());
        continue;
      }
    }
    run(w, *task);
    if (w.pid >= 0 && options_.max_tasks_per_worker != 0 &&
        ++w.served >= options_.max_tasks_per_worker && !closing()) {
      try {
        recycle(w);
      } catch (...) {
        // The next task starts a worker and reports why that fails.
      }
    }
    if (w.pid < 0 && !closing()) {
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
  std::lock_guard lock(mutex_);
  return closed_;
}

void pool_engine::run(worker& w, queued_task& task) {
  channel::endpoint ep = w.seg->parent_endpoint();
  channel::message_header h;
  h.kind = channel::message_kind::task;
  h.key = task.key;
  h.count = task.count;
  h.size = task.payload.size();
  {
    std::lock_guard lock(mutex_);
    h.id = ++next_id_;
    w.current = task.state;
  }
  auto deadline = channel::ring::no_deadline();
  if (options_.task_timeout.count() > 0) {
    deadline = std::chrono::steady_clock::now() + options_.task_timeout;
  }
  channel::io_status s = ep.send(h, task.payload.data());
  channel::message_header reply;
  std::vector<char> payload;
  // Only a failure needs the task's name: looking it up takes the registry's lock.
  const auto name = [&task] { return registry::name_of(task.key); };
  try {
    if (s == channel::io_status::ok) s = ep.receive(reply, payload, deadline);
  } catch (...) {
    retire(w, std::current_exception(), name());
    std::lock_guard lock(mutex_);
    w.current = nullptr;
    return;
  }
  if (s == channel::io_status::ok && reply.id != h.id) {
    retire(w,
           std::make_exception_ptr(serialization_error(
               "task '" + name() + "': the worker answered another task; it was replaced")),
           name());
  } else if (s == channel::io_status::ok && reply.kind == channel::message_kind::result) {
    task.state->set_value(std::move(payload));
  } else if (s == channel::io_status::ok && reply.kind == channel::message_kind::failure) {
    task.state->set_error(failure_to_exception(reply, payload));
  } else if (s == channel::io_status::timed_out) {
    retire(w, std::make_exception_ptr(task_timeout(options_.task_timeout, name())), name());
  } else {
    retire(w, nullptr, name());
  }
  std::lock_guard lock(mutex_);
  w.current = nullptr;
}

// Ends the worker process after a failure and fails its task: `why` if given, otherwise
// `worker_crashed` with how the process ended (or `cancelled_error` during a cancelling
// shutdown). The driver starts a replacement afterwards.
void pool_engine::retire(worker& w, const std::exception_ptr& why, const std::string& task) {
  const int pid = w.pid;
  const platform::exit_status st = end_process(w);
  w.seg.reset();
  std::shared_ptr<task_state> state;
  bool cancelling = false;
  {
    std::lock_guard lock(mutex_);
    state = w.current;
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
    std::lock_guard lock(mutex_);
    last_failure_ = e.what();
  } catch (...) {
  }
  if (state) state->set_error(error);
}

void pool_engine::stop(worker& w) {
  if (w.pid < 0) return;
  channel::endpoint ep = w.seg->parent_endpoint();
  channel::message_header h;
  h.kind = channel::message_kind::shutdown;
  channel::message_header reply;
  std::vector<char> payload;
  if (ep.send(h, nullptr) == channel::io_status::ok) {
    // The worker answers by exiting; anything else it sends is a protocol error.
    try {
      ep.receive(reply, payload, std::chrono::steady_clock::now() + exit_grace);
    } catch (...) {
    }
  }
  end_process(w);
}

void pool_engine::kill_all() noexcept {
  for (auto& w : workers_) {
    try {
      end_process(*w);
    } catch (...) {
      // Reaping through a zygote allocates; nothing more can be done for this worker.
    }
  }
}

std::shared_ptr<task_state> pool_engine::enqueue(std::uint64_t key, std::uint32_t count,
                                                 std::vector<char> payload) {
  auto state = std::make_shared<task_state>(count);
  {
    std::lock_guard lock(mutex_);
    if (broken_) std::rethrow_exception(broken_);
    if (closed_) throw pool_closed();
    queue_.push_back(queued_task{key, count, std::move(payload), state});
  }
  queue_cv_.notify_one();
  return state;
}

void pool_engine::shutdown(bool wait, bool cancel_pending) {
  std::deque<queued_task> dropped;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    if (cancel_pending) {
      cancelling_ = true;
      dropped.swap(queue_);
      for (auto& w : workers_) {
        if (w->current) platform::kill_handle(w->handle);
      }
    }
  }
  queue_cv_.notify_all();
  for (queued_task& t : dropped) t.state->cancel();
  if (!wait) return;
  std::lock_guard join_lock(join_mutex_);
  for (auto& w : workers_) {
    if (w->driver.joinable()) w->driver.join();
  }
  watcher_.stop();
  launcher_->stop();
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

std::size_t process_pool::workers() const noexcept { return engine_->workers(); }

mproc::start_method process_pool::start_method() const noexcept { return engine_->method(); }

std::shared_ptr<detail::task_state> process_pool::enqueue(std::uint64_t key, std::uint32_t count,
                                                          std::vector<char> payload) {
  return engine_->enqueue(key, count, std::move(payload));
}

std::size_t process_pool::pick_chunksize(std::size_t items) const noexcept {
  return detail::default_chunksize(items, workers());
}

}  // namespace mproc
