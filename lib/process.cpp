// A process of its own for one function: a worker with a launcher of its own, started and
// owned exactly as a pool's worker is (lifeline, job object, handshake, reaping), sent one
// `run` message instead of tasks.

#include "platform/process.hpp"
#include "channel/channel.hpp"
#include "launch/launcher.hpp"
#include "launch/worker_process.hpp"
#include "registry.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/errors.hpp>
#include <mproc/pool.hpp>
#include <mproc/process.hpp>

#include <condition_variable>
#include <stdexcept>
#include <string>
#include <utility>

namespace mproc {

namespace {

process_exit to_process_exit(const platform::exit_status& st) {
  process_exit e;
  e.exit_code = st.code;
  e.signal = st.signal;
  return e;
}

}  // namespace

std::string process_exit::describe() const {
  return platform::exit_status{exit_code, signal}.describe();
}

namespace detail {

class process_state {
 public:
  process_state() = default;
  process_state(const process_state&) = delete;
  process_state& operator=(const process_state&) = delete;

  ~process_state() {
    if (worker_ != nullptr) worker_->end();  // kills it if it still runs, and reaps it
    if (launcher_ != nullptr) launcher_->stop();
  }

  void start(const process_options& options, std::uint64_t key, std::string_view name,
             const std::vector<char>& arguments) {
    const start_method method = launch::resolve(options.start);
    launch::check_startable(method, "a process");
    launcher_ = launch::make_launcher(method, options.allow_fork_with_threads);
    launcher_->start_watching();
    // The watcher's thread calls this; it is stopped before this object goes.
    worker_ = launcher_->start_worker([this] {
      {
        detail::lock_guard lock(mutex_);
        exited_ = true;
      }
      exited_cv_.notify_all();
    });
    worker_->handshake(pool_options{}.start_timeout);  // a pool's default limit
    channel::message_header h;
    h.kind = channel::message_kind::run;
    h.key = key;
    h.count = 1;
    h.id = 1;
    h.size = arguments.size();
    // A process that dies while it reads its arguments has ended: `join` tells how.
    const channel::io_status s = worker_->endpoint().send(h, arguments.data());
    if (s == channel::io_status::corrupt) {
      throw start_error("cannot start process '" + std::string(name) +
                        "': it overwrote the positions in its shared memory");
    }
  }

  int pid() const noexcept { return worker_->pid(); }
  bool running() const noexcept { return !worker_->gone(); }
  void terminate() noexcept { worker_->terminate(); }
  void kill() noexcept { worker_->kill(); }

  std::optional<process_exit> wait(std::optional<std::chrono::milliseconds> limit) {
    detail::unique_lock lock(mutex_);
    const auto ended = [this]() MPROC_REQUIRES(mutex_) { return exited_; };
    if (!limit) {
      exited_cv_.wait(lock.native(), ended);
    } else if (!exited_cv_.wait_for(lock.native(), *limit, ended)) {
      return std::nullopt;
    }
    lock.unlock();
    // Reaps it (once: later calls return the same status), then lets the watching thread and
    // any zygote go: nothing is left to watch.
    detail::lock_guard end_lock(end_mutex_);
    const platform::exit_status st = worker_->end();
    launcher_->stop();
    return to_process_exit(st);
  }

 private:
  std::unique_ptr<launch::launcher> launcher_;
  std::unique_ptr<launch::worker_process> worker_;
  detail::mutex mutex_;
  std::condition_variable exited_cv_;  // notified with mutex_
  bool exited_ MPROC_GUARDED_BY(mutex_) = false;
  detail::mutex end_mutex_;  // one `end` at a time: each returns the reaped status
};

}  // namespace detail

struct process_access {
  static process make(std::shared_ptr<detail::process_state> state) noexcept {
    return process(std::move(state));
  }
};

namespace detail {

process start_process(const process_options& options, std::uint64_t key, std::string_view name,
                      const std::vector<char>& arguments) {
  registry::check();
  auto state = std::make_shared<process_state>();
  state->start(options, key, name, arguments);
  return process_access::make(std::move(state));
}

}  // namespace detail

process::process() noexcept = default;
process::process(std::shared_ptr<detail::process_state> state) noexcept
    : state_(std::move(state)) {}
process::~process() = default;
process::process(process&&) noexcept = default;
process& process::operator=(process&&) noexcept = default;

namespace {

detail::process_state& state_of(const std::shared_ptr<detail::process_state>& s, const char* call) {
  if (s == nullptr) {
    throw std::logic_error(std::string("mproc::process::") + call +
                           ": this object has no process (default-constructed or moved from)");
  }
  return *s;
}

}  // namespace

int process::pid() const noexcept { return state_ != nullptr ? state_->pid() : -1; }
bool process::running() const { return state_of(state_, "running").running(); }
process_exit process::join() { return *state_of(state_, "join").wait(std::nullopt); }
std::optional<process_exit> process::join_for(std::chrono::milliseconds limit) {
  return state_of(state_, "join_for").wait(limit);
}
void process::terminate() { state_of(state_, "terminate").terminate(); }
void process::kill() { state_of(state_, "kill").kill(); }

}  // namespace mproc
