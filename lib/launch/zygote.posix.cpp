#include "launch/zygote.posix.hpp"
#include "platform/own_threads.hpp"

#include "launch/launcher.hpp"
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

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mproc::launch {

namespace {

struct status_record {
  std::int32_t pid;
  std::int32_t status;
};

platform::exit_status decode(int status) {
  if (WIFSIGNALED(status)) return {std::nullopt, WTERMSIG(status)};
  if (WIFEXITED(status)) return {WEXITSTATUS(status), std::nullopt};
  return {};
}

struct zygote_pipes {
  platform::pipe_ends lifeline, requests, replies, statuses;

  zygote_pipes() {
    for (platform::pipe_ends* p : {&lifeline, &requests, &replies, &statuses}) {
      if (const std::error_code ec = platform::make_pipe(*p)) {
        close_all();
        throw start_error("cannot start the zygote: cannot create a pipe: " + ec.message());
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

std::unique_ptr<zygote> zygote::fork_from_here() {
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
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    platform::unregister_lifeline(p.lifeline.write);
    platform::unregister_lifeline(p.requests.write);
    p.close_all();
    throw start_error(std::string("cannot start workers: fork failed: ") + std::strerror(err));
  }
  if (pid == 0) {
    platform::reset_signals_in_worker();
    platform::close_lifelines_in_child();
    platform::close_fd(p.replies.read);
    platform::close_fd(p.statuses.read);
    serve_zygote(p.lifeline.read, p.requests.read, p.replies.write, p.statuses.write);
  }
  std::unique_ptr<zygote> z(new zygote());
  z->pid_ = static_cast<int>(pid);
  z->lifeline_ = p.lifeline.write;
  z->requests_ = p.requests.write;
  z->replies_ = p.replies.read;
  z->statuses_ = p.statuses.read;
  p.close_zygote_side();
  return z;
}

std::unique_ptr<zygote> zygote::spawn() {
  zygote_pipes p;
  platform::register_lifeline(p.lifeline.write);
  platform::register_lifeline(p.requests.write);
  // Above every target number, so that no dup2 in the child overwrites a source.
  const auto raise_fd = [](int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 10); };
  const int fds[4] = {raise_fd(p.lifeline.read), raise_fd(p.requests.read),
                      raise_fd(p.replies.write), raise_fd(p.statuses.write)};
  std::unique_ptr<zygote> z(new zygote());
  z->lifeline_ = p.lifeline.write;
  z->requests_ = p.requests.write;
  z->replies_ = p.replies.read;
  z->statuses_ = p.statuses.read;
  p.lifeline.write = p.requests.write = p.replies.read = p.statuses.read = -1;
  try {
    for (const int fd : fds) {
      if (fd < 0) throw start_error("cannot start the forkserver: cannot duplicate a pipe");
    }
    const std::vector<std::string> args{std::string(zygote_argument) + "3,4,5,6"};
    z->pid_ = platform::spawn_process(platform::executable_path(), args,
                                      {{fds[0], 3}, {fds[1], 4}, {fds[2], 5}, {fds[3], 6}});
  } catch (const start_error&) {
    for (const int fd : fds) platform::close_fd(fd);
    p.close_all();
    throw;
  } catch (const std::exception& e) {
    for (const int fd : fds) platform::close_fd(fd);
    p.close_all();
    throw start_error(std::string("cannot start the forkserver: ") + e.what());
  }
  for (const int fd : fds) platform::close_fd(fd);
  p.close_all();  // only the zygote's ends are left in p
  return z;
}

zygote::~zygote() {
  // Closing the request pipe ends the zygote's loop; closing the lifeline ends any worker of
  // it that is still running.
  platform::unregister_lifeline(requests_);
  platform::close_fd(requests_);
  if (pid_ > 0) platform::reap(pid_);
  platform::unregister_lifeline(lifeline_);
  platform::close_fd(lifeline_);
  platform::close_fd(replies_);
  platform::close_fd(statuses_);
}

int zygote::launch(const std::string& name, const std::string& secret) {
  std::lock_guard lock(mutex_);
  if (dead_) return -1;
  std::string request;
  const auto length = static_cast<std::uint32_t>(name.size());
  request.append(reinterpret_cast<const char*>(&length), sizeof length);
  request += name;
  request += secret;
  std::int32_t pid = -1;
  if (!platform::write_all(requests_, request.data(), request.size()) ||
      !platform::read_all(replies_, &pid, sizeof pid)) {
    dead_ = true;
    return -1;
  }
  return pid;
}

platform::exit_status zygote::reap(int pid) {
  std::lock_guard lock(mutex_);
  for (;;) {
    if (const auto it = reported_.find(pid); it != reported_.end()) {
      const platform::exit_status st = it->second;
      reported_.erase(it);
      return st;
    }
    status_record r{};
    if (dead_ || !platform::read_all(statuses_, &r, sizeof r)) {
      dead_ = true;
      return {};  // the zygote is gone: nobody can tell how its worker ended
    }
    reported_[r.pid] = decode(r.status);
  }
}

void zygote::end() noexcept {
  std::lock_guard lock(mutex_);
  dead_ = true;
  if (pid_ <= 0) return;
  platform::kill_process(pid_);  // our own unreaped child: the pid cannot have been reused
  platform::reap(pid_);
  pid_ = -1;
}

void serve_zygote(int lifeline, int requests, int replies, int statuses) {
  // Single-threaded by construction: it is forked before the application's threads matter,
  // or spawned; so every fork below copies a process with no other thread and no held lock.
  std::vector<std::pair<int, int>> children;  // (pid, pidfd)
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign(1, pollfd{requests, POLLIN, 0});
    for (const auto& [pid, fd] : children) fds.push_back(pollfd{fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::_Exit(1);
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const int pid = children[i - 1].first;
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      const status_record r{pid, status};
      platform::write_all(statuses, &r, sizeof r);
      ::close(children[i - 1].second);
      children[i - 1].first = -1;
    }
    std::erase_if(children, [](const auto& c) { return c.first < 0; });
    if (fds[0].revents == 0) continue;

    std::uint32_t length = 0;
    if (!platform::read_all(requests, &length, sizeof length) || length > 4096) std::_Exit(0);
    std::string name(length, '\0');
    std::string secret(worker::secret_size, '\0');
    if (!platform::read_all(requests, name.data(), name.size()) ||
        !platform::read_all(requests, secret.data(), secret.size())) {
      std::_Exit(0);  // the application is gone
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(requests);
      ::close(replies);
      ::close(statuses);
      for (const auto& c : children) ::close(c.second);
      worker::serve_named(name, lifeline, secret);
    }
    std::int32_t reply = static_cast<std::int32_t>(pid);
    if (pid > 0) {
      const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (fd >= 0) {
        children.emplace_back(static_cast<int>(pid), fd);
      } else {
        ::kill(pid, SIGKILL);  // a worker that cannot be watched would never be reported
        ::waitpid(pid, nullptr, 0);
        reply = -1;
      }
    }
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
