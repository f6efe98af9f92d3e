#include "launch/worker_process.hpp"

#include "assert.hpp"
#include "registry.hpp"

#include <mproc/errors.hpp>

namespace mproc::launch {

namespace {

// How long a killed worker may take to be reaped: at once for a child of ours, as long as its
// zygote takes to report for one forked by a zygote.
constexpr auto reap_limit = std::chrono::seconds(5);

// What a worker did that broke its channel (see channel::ring).
constexpr const char* overwritten =
    "overwrote the positions in its shared memory (a bug in a task that writes through a stray "
    "pointer?)";

// A build identity as a message shows it: its first 16 hex digits.
std::string shown(const std::string& build) {
  return build.empty() ? std::string("unknown") : build.substr(0, 16);
}

}  // namespace

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

worker_process::worker_process(launcher& owner, std::shared_ptr<channel::segment> seg,
                               std::string secret, launcher::started s,
                               std::shared_ptr<std::atomic<bool>> gone)
    : owner_(owner),
      seg_(std::move(seg)),
      secret_(std::move(secret)),
      pid_(s.pid),
      gone_(std::move(gone)),
      handle_(owner.open_handle(s.pid)),
      lifeline_(s.lifeline) {}

worker_process::~worker_process() { end(); }

void worker_process::advance(phase from, phase to) noexcept {
  [[maybe_unused]] const phase was = phase_.exchange(to);
  MPROC_ASSERT(was == from, "a worker skipped a phase of its start");
}

void worker_process::fail_start(const std::string& what, bool ended_by_itself) {
  const platform::exit_status st = end();
  std::string text = what;
  if (ended_by_itself) text = "it " + st.describe() + " before reaching the worker loop";
  if (owner_.method() == start_method::spawn) {
    text +=
        ". A spawned worker runs this program again: mproc::init(argc, argv) must be the "
        "first line of main";
  }
  throw start_error("cannot start worker (pid " + std::to_string(pid_) + "): " + text);
}

void worker_process::handshake(std::chrono::milliseconds limit) {
  channel::endpoint ep = endpoint();
  channel::message_header h;
  std::vector<char> payload;
  channel::io_status s = channel::io_status::ok;
  try {
    s = ep.receive(h, payload, clock::now() + limit);
  } catch (const std::exception& e) {
    seg_->unlink();
    fail_start(std::string("its first message is malformed: ") + e.what(), false);
  }
  seg_->unlink();  // the worker has it mapped (or will never need it)
  if (s == channel::io_status::ok && h.kind == channel::message_kind::hello) {
    const std::string proof(payload.begin(), payload.end());
    if (proof.size() < secret_.size() || proof.compare(0, secret_.size(), secret_) != 0) {
      fail_start(
          "its first message does not carry the secret it was given; another process may be "
          "tampering with the pool's shared memory",
          false);
    }
    const std::string build = proof.substr(secret_.size());
    if (build != platform::build_identity()) {
      fail_start("it runs another build of the program (build " + shown(build) +
                     ", the application's " + shown(platform::build_identity()) +
                     "): the executable file was replaced since the application started; "
                     "restart the application",
                 false);
    }
    if (h.key != registry::digest()) {
      fail_start("it runs a different set of tasks (was the executable file replaced?)", false);
    }
    (void)seg_->try_direct_copies(pid_, secret_);  // where refused, the rings carry everything
    advance(phase::started, phase::greeted);
    return;
  }
  if (s == channel::io_status::ok && h.kind == channel::message_kind::failure) {
    std::string why = "it could not start";
    try {
      why += ": " + channel::decode_failure(payload.data(), payload.size()).message;
    } catch (const std::exception&) {
    }
    fail_start(why, false);
  }
  if (s == channel::io_status::timed_out) {
    fail_start("it did not reach the worker loop within " + std::to_string(limit.count()) + " ms",
               false);
  }
  if (s == channel::io_status::peer_gone) fail_start({}, true);
  if (s == channel::io_status::corrupt) fail_start(std::string("it ") + overwritten, false);
  fail_start("it sent an unexpected first message", false);
}

void worker_process::send_initializer(const bound_task& init) {
  if (init.empty()) return;
  channel::message_header h;
  h.kind = channel::message_kind::task;
  h.key = init.key();
  h.count = 1;
  h.size = init.arguments().size();
  // A send fails only if the worker died; await_initializer then reports how.
  (void)endpoint().send(h, init.arguments().data());
}

void worker_process::await_initializer(const bound_task& init, clock::time_point deadline) {
  if (init.empty()) {
    advance(phase::greeted, phase::ready);
    return;
  }
  channel::endpoint ep = endpoint();
  const std::string name = registry::name_of(init.key());
  channel::message_header reply;
  std::vector<char> payload;
  std::string what;
  try {
    const channel::io_status s = ep.receive(reply, payload, deadline);
    if (s == channel::io_status::ok && reply.kind == channel::message_kind::result) {
      advance(phase::greeted, phase::ready);
      return;
    }
    if (s == channel::io_status::ok && reply.kind == channel::message_kind::failure) {
      try {
        std::rethrow_exception(failure_to_exception(reply, payload));
      } catch (const std::exception& e) {
        what = std::string("it threw ") + e.what();
      }
    } else if (s == channel::io_status::timed_out) {
      what = "it ran longer than task_timeout";
    } else if (s == channel::io_status::corrupt) {
      what = std::string("its worker ") + overwritten;
    } else {
      what = "its worker " + end().describe();
    }
  } catch (const std::exception& e) {
    what = e.what();
  }
  fail_start("its initializer '" + name + "' failed: " + what, false);
}

platform::exit_status worker_process::request_exit(std::chrono::nanoseconds grace) noexcept {
  if (!gone()) {
    phase_.store(phase::exiting);
    channel::endpoint ep = endpoint();
    channel::message_header h;
    h.kind = channel::message_kind::shutdown;
    if (ep.send(h, nullptr) == channel::io_status::ok) {
      // The worker answers by exiting; anything else it sends is a protocol error.
      channel::message_header reply;
      std::vector<char> payload;
      try {
        ep.receive(reply, payload, clock::now() + grace);
      } catch (...) {
      }
    }
  }
  return end();
}

void worker_process::kill() noexcept {
  detail::lock_guard lock(mutex_);
  // Once `end` has it, the process is killed there, and its pid may soon be reaped.
  if (!ending_) owner_.signal(pid_, handle_, false, gone());
}

void worker_process::terminate() noexcept {
  detail::lock_guard lock(mutex_);
  if (!ending_) owner_.signal(pid_, handle_, true, gone());
}

platform::exit_status worker_process::end() noexcept {
  {
    detail::lock_guard lock(mutex_);
    if (ending_) return status_;
    ending_ = true;
    // First the lifeline: a worker that can still read it leaves by itself.
    owner_.release(-1, lifeline_);
    lifeline_ = -1;
    owner_.signal(pid_, handle_, false, gone());
  }
  // Without the lock: `kill` from another thread returns at once meanwhile.
  const platform::exit_status st = owner_.reap(pid_, clock::now() + reap_limit);
  detail::lock_guard lock(mutex_);
  status_ = st;
  owner_.release(handle_, -1);
  handle_ = -1;
  phase_.store(phase::ended);
  seg_->unlink();
  return status_;
}

}  // namespace mproc::launch
