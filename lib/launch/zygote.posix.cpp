#include "launch/zygote.posix.hpp"

#include "channel/channel.hpp"
#include "launch/launcher.hpp"
#include "launch/refusal.hpp"
#include "platform/own_threads.hpp"
#include "platform/pipe.hpp"
#include "platform/process.hpp"
#include "platform/socket.posix.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/errors.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <mutex>
#include <string>
#include <vector>

#include <csignal>

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mproc::launch {

namespace {

// How long the zygote has to answer a request or report an ended worker. Forking takes a
// millisecond (a second for a process of many gigabytes); the fork is retried for half a
// second when the system is short of processes.
constexpr auto answer_limit = std::chrono::seconds(3);

struct status_record {
  std::int32_t pid;
  std::int32_t status;
};

struct zygote_pipes {
  platform::pipe_ends lifeline, requests, replies, statuses;

  zygote_pipes() {
    for (platform::pipe_ends* p : {&lifeline, &requests, &replies, &statuses}) {
      const std::error_code ec =
          p == &requests ? platform::make_socket_pair(*p) : platform::make_pipe(*p);
      if (ec) {
        close_all();
        std::rethrow_exception(refusal_error("cannot start the zygote: cannot create a pipe", ec));
      }
    }
  }
  void close_all() noexcept {
    for (platform::pipe_ends* p : {&lifeline, &requests, &replies, &statuses}) {
      platform::close_fd(p->read);
      platform::close_fd(p->write);
      p->read = p->write = -1;
    }
  }
  // The ends the zygote keeps.
  void close_zygote_side() noexcept {
    for (int* fd : {&lifeline.read, &requests.read, &replies.write, &statuses.write}) {
      platform::close_fd(*fd);
      *fd = -1;
    }
  }
};

}  // namespace

std::shared_ptr<zygote> zygote::fork_from_here() {
  if (platform::in_user_code()) {
    throw start_error(
        "cannot start a fork pool inside a done-callback: the fork waits until no callback "
        "runs on a pool's thread. Start the pool outside the callback, or use forkserver");
  }
  // No done-callback runs on a pool's thread while the application forks: a lock it took
  // would be copied locked into every worker.
  const std::unique_lock no_user_code(platform::user_code_gate());
  zygote_pipes p;
  // Both write ends mean "the application is alive": forked children must not keep copies.
  platform::register_lifeline(p.lifeline.write);
  platform::register_lifeline(p.requests.write);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = -1;
  int tries = 0;
  const std::error_code ec = retry_while_busy(
      [&] {
        pid = ::fork();
        return std::error_code(pid < 0 ? errno : 0, std::generic_category());
      },
      &tries);
  if (ec) {
    platform::unregister_lifeline(p.lifeline.write);
    platform::unregister_lifeline(p.requests.write);
    p.close_all();
    std::rethrow_exception(refusal_error(
        "cannot start workers: fork failed (tried " + std::to_string(tries) + " times)", ec));
  }
  if (pid == 0) {
    platform::reset_signals_in_worker();
    platform::close_lifelines_in_child();
    platform::close_fd(p.replies.read);
    platform::close_fd(p.statuses.read);
    serve_zygote(p.lifeline.read, p.requests.read, p.replies.write, p.statuses.write);
  }
  std::shared_ptr<zygote> z(new zygote());
  z->pid_ = static_cast<int>(pid);
  z->lifeline_ = p.lifeline.write;
  z->requests_ = p.requests.write;
  z->replies_ = p.replies.read;
  z->statuses_ = p.statuses.read;
  p.close_zygote_side();
  return z;
}

std::shared_ptr<zygote> zygote::spawn() {
  zygote_pipes p;
  platform::register_lifeline(p.lifeline.write);
  platform::register_lifeline(p.requests.write);
  // Above every target number, so that no dup2 in the child overwrites a source.
  std::error_code dup_error;
  const auto raise_fd = [&](int fd) { return platform::duplicate_above(fd, 10, dup_error); };
  const int fds[4] = {raise_fd(p.lifeline.read), raise_fd(p.requests.read),
                      raise_fd(p.replies.write), raise_fd(p.statuses.write)};
  std::shared_ptr<zygote> z(new zygote());
  z->lifeline_ = p.lifeline.write;
  z->requests_ = p.requests.write;
  z->replies_ = p.replies.read;
  z->statuses_ = p.statuses.read;
  p.lifeline.write = p.requests.write = p.replies.read = p.statuses.read = -1;
  const auto give_up = [&](const std::string& action, const std::error_code& ec) {
    for (const int fd : fds) platform::close_fd(fd);
    p.close_all();
    std::rethrow_exception(refusal_error(action, ec));
  };
  for (const int fd : fds) {
    if (fd < 0) give_up("cannot start the forkserver: cannot pass it its pipes", dup_error);
  }
  // The program that runs, even if its file was replaced or deleted since it started.
  const std::string exe = platform::executable_path();
  const std::vector<std::string> argv{exe, std::string(zygote_argument) + "3,4,5,6"};
  int tries = 0;
  const std::error_code ec = retry_while_busy(
      [&] {
        return platform::spawn_process(platform::running_program(), argv,
                                       {{fds[0], 3}, {fds[1], 4}, {fds[2], 5}, {fds[3], 6}},
                                       z->pid_);
      },
      &tries);
  if (ec) {
    give_up("cannot start the forkserver: cannot run '" + exe + "' (tried " +
                std::to_string(tries) + " times)",
            ec);
  }
  for (const int fd : fds) platform::close_fd(fd);
  p.close_all();  // only the zygote's ends are left in p
  return z;
}

zygote::~zygote() {
  end();
  platform::unregister_lifeline(requests_);
  platform::close_fd(requests_);
  platform::unregister_lifeline(lifeline_);
  platform::close_fd(lifeline_);
  platform::close_fd(replies_);
  platform::close_fd(statuses_);
}

zygote::launched zygote::launch(const std::string& name, int descriptor,
                                const std::string& secret) {
  detail::lock_guard lock(request_mutex_);
  launched out;
  if (dead()) {
    out.unresponsive = "is gone";
    return out;
  }
  std::string request;
  const auto length = static_cast<std::uint32_t>(name.size());
  request.append(reinterpret_cast<const char*>(&length), sizeof length);
  request += name;
  request += secret;
  if (!platform::send_all(requests_, request.data(), request.size(), descriptor)) {
    out.unresponsive = "is gone (its request socket is closed)";
    return out;
  }
  pollfd p{replies_, POLLIN, 0};
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(answer_limit);
  int ready = 0;
  do {
    ready = ::poll(&p, 1, static_cast<int>(limit.count()));
  } while (ready < 0 && errno == EINTR);
  std::int32_t reply = 0;
  if (ready == 0) {
    out.unresponsive = "did not answer within " + std::to_string(limit.count()) +
                       " ms (stopped by a signal or a debugger?)";
  } else if (!platform::read_all(replies_, &reply, sizeof reply)) {
    out.unresponsive = "is gone";
  } else if (reply > 0) {
    out.pid = reply;
    return out;
  } else {
    out.error = std::error_code(-reply, std::generic_category());
    return out;
  }
  detail::lock_guard report_lock(report_mutex_);
  mark_dead();
  return out;
}

void zygote::on_report(int pid, std::function<void()> on_exit) {
  detail::unique_lock lock(report_mutex_);
  if (dead_ || reported_.count(pid) != 0) {
    lock.unlock();
    on_exit();
    return;
  }
  listeners_[pid] = std::move(on_exit);
}

bool zygote::read_report() {
  status_record r{};
  // The zygote writes whole records (a pipe write under PIPE_BUF is atomic): one is there.
  const bool got = platform::read_all(statuses_, &r, sizeof r);
  // The watcher's wait makes the pipe non-blocking: a wake-up with nothing to read is no end.
  if (!got && errno == EAGAIN) return true;
  std::function<void()> listener;
  std::map<int, std::function<void()>> orphans;
  {
    detail::lock_guard lock(report_mutex_);
    if (got) {
      reported_[r.pid] = platform::exit_status_of(r.status);
      if (const auto it = listeners_.find(r.pid); it != listeners_.end()) {
        listener = std::move(it->second);
        listeners_.erase(it);
      }
    } else {
      mark_dead();
      orphans.swap(listeners_);
    }
  }
  reported_cv_.notify_all();
  if (listener) listener();
  // Nobody will report on these any more: their exits are taken as happened now.
  for (auto& [pid, call] : orphans) call();
  return got;
}

platform::exit_status zygote::reap(int pid, clock::time_point deadline) {
  detail::unique_lock lock(report_mutex_);
  if (!reported_cv_.wait_until(lock.native(), deadline, [&]() MPROC_REQUIRES(report_mutex_) {
        return dead_ || reported_.count(pid) != 0;
      })) {
    std::fprintf(stderr,
                 "mproc: the zygote (pid %d) did not report the end of worker %d in time "
                 "(stopped by a signal or a debugger?); it is replaced\n",
                 pid_, pid);
    mark_dead();
  }
  const auto it = reported_.find(pid);
  if (it == reported_.end()) return {};  // nobody can tell how it ended
  const platform::exit_status st = it->second;
  reported_.erase(it);
  return st;
}

bool zygote::dead() const {
  detail::lock_guard lock(report_mutex_);
  return dead_;
}

void zygote::mark_dead() noexcept {
  dead_ = true;
  // Our own child, not yet reaped (`ended_`): its pid cannot have been reused. SIGKILL ends
  // it even if it is stopped.
  if (pid_ > 0 && !ended_) platform::kill_process(pid_);
  reported_cv_.notify_all();
}

void zygote::end() noexcept {
  detail::lock_guard lock(report_mutex_);
  mark_dead();
  if (ended_ || pid_ <= 0) return;
  ended_ = true;
  platform::reap(pid_);
}

void serve_zygote(int lifeline, int requests, int replies, int statuses) {
  // Single-threaded by construction: it is forked before the application's threads matter,
  // or spawned; so every fork below copies a process with no other thread and no held lock.
  // Its children's ends come as SIGCHLD through a signalfd: no pidfd is needed (valgrind and
  // kernels before 5.3 have none).
  sigset_t child_signal;
  sigemptyset(&child_signal);
  sigaddset(&child_signal, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &child_signal, nullptr);
  const int children = ::signalfd(-1, &child_signal, SFD_CLOEXEC | SFD_NONBLOCK);
  if (children < 0) {
    std::fprintf(stderr, "mproc zygote: cannot watch its workers (signalfd): %s\n",
                 std::strerror(errno));
    std::_Exit(1);
  }
  for (;;) {
    pollfd fds[2] = {{requests, POLLIN, 0}, {children, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::_Exit(1);
    }
    if (fds[1].revents != 0) {
      signalfd_siginfo info[8];
      while (::read(children, info, sizeof info) > 0) {
      }
      // Signals of one kind merge: every ended child is collected, whichever signal told.
      int status = 0;
      for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
        const status_record r{static_cast<std::int32_t>(pid), status};
        if (!platform::write_all(statuses, &r, sizeof r)) std::_Exit(0);
      }
    }
    if (fds[0].revents == 0) continue;

    std::uint32_t length = 0;
    int memory = -1;  // the worker's segment, when it has no name
    if (!platform::receive_all(requests, &length, sizeof length, memory) || length > 4096) {
      std::_Exit(0);
    }
    std::string name(length, '\0');
    std::string secret(worker::secret_size, '\0');
    if (!platform::read_all(requests, name.data(), name.size()) ||
        !platform::read_all(requests, secret.data(), secret.size())) {
      std::_Exit(0);  // the application is gone
    }
    const std::string address = memory >= 0 ? channel::segment::descriptor_address(memory) : name;
    pid_t pid = -1;
    // A limit on processes reached for a moment must not look like the zygote's death.
    const std::error_code ec = retry_while_busy([&] {
      pid = ::fork();
      return std::error_code(pid < 0 ? errno : 0, std::generic_category());
    });
    if (pid == 0) {
      ::close(requests);
      ::close(replies);
      ::close(statuses);
      ::close(children);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      worker::serve_at(address, lifeline, secret);
    }
    platform::close_fd(memory);  // the worker has its own copy
    const std::int32_t reply = pid > 0 ? static_cast<std::int32_t>(pid) : -ec.value();
    if (!platform::write_all(replies, &reply, sizeof reply)) std::_Exit(0);
  }
}

void serve_spawned_zygote(const std::string& token) {
  platform::reset_signals_in_worker();
  int fd[4] = {-1, -1, -1, -1};
  if (std::sscanf(token.c_str(), "%d,%d,%d,%d", &fd[0], &fd[1], &fd[2], &fd[3]) != 4) {
    std::fprintf(stderr, "mproc forkserver: malformed argument '%s'\n", token.c_str());
    std::_Exit(2);
  }
  for (const int f : fd) ::fcntl(f, F_SETFD, FD_CLOEXEC);
  serve_zygote(fd[0], fd[1], fd[2], fd[3]);
}

}  // namespace mproc::launch
