#include "platform/process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <spawn.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mproc::platform {

int current_pid() noexcept { return static_cast<int>(::getpid()); }

std::size_t thread_count() {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n == 0 ? 1 : n;
}

std::string executable_path() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::vector<std::string> command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> out;
  for (std::string arg; std::getline(in, arg, '\0');) out.push_back(arg);
  return out;
}

std::error_code random_bytes(unsigned char* out, std::size_t n) noexcept {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return {errno, std::generic_category()};
    got += static_cast<std::size_t>(r);
  }
  return {};
}

std::string error_name(const std::error_code& ec) {
  if (ec.category() != std::generic_category() && ec.category() != std::system_category()) {
    return {};
  }
  const char* name = ::strerrorname_np(ec.value());
  return name != nullptr ? name : std::string();
}

std::string signal_name(int signal) {
  if (const char* abbrev = ::sigabbrev_np(signal)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

std::string exit_code_meaning(int /*code*/) { return {}; }

std::error_code spawn_process(const std::string& exe, const std::vector<std::string>& args,
                              const std::vector<std::pair<int, int>>& inherit, int& pid) {
  // posix_spawn, not a fork followed by library code: Boost.Process 1.81's own launchers
  // allocate in the forked child (asio's notify_fork), which hangs when another thread held
  // the allocator's lock at the moment of the fork.
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  int lowest_free = 3;
  for (const auto& [fd, target] : inherit) {
    posix_spawn_file_actions_adddup2(&actions, fd, target);  // the copy is not close-on-exec
    lowest_free = std::max(lowest_free, target + 1);
  }
  posix_spawn_file_actions_addclosefrom_np(&actions, lowest_free);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> argv;
  std::string program = exe;
  argv.push_back(program.data());
  std::vector<std::string> copies = args;
  for (std::string& a : copies) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = -1;
  const int rc = ::posix_spawn(&child, exe.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return {rc, std::generic_category()};
  pid = static_cast<int>(child);
  return {};
}

void join_worker_job(int /*handle*/) noexcept {}

exit_status reap(int pid) noexcept {
  int status = 0;
  pid_t r = 0;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return {};  // already reaped elsewhere (e.g. SIGCHLD set to SIG_IGN): unknown
  return exit_status_of(status);
}

exit_status exit_status_of(int wait_status) noexcept {
  if (WIFSIGNALED(wait_status)) return {std::nullopt, WTERMSIG(wait_status)};
  if (WIFEXITED(wait_status)) return {WEXITSTATUS(wait_status), std::nullopt};
  return {};
}

void kill_process(int pid) noexcept {
  if (pid > 0) ::kill(pid, SIGKILL);
}

int open_handle(int pid) noexcept {
  std::error_code ignored;
  return open_handle(pid, ignored);
}

int open_handle(int pid, std::error_code& ec) noexcept {
  ec.clear();
  const int fd = pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1;
  if (fd < 0) ec = {pid > 0 ? errno : ESRCH, std::generic_category()};
  return fd;
}

void kill_handle(int handle) noexcept {
  if (handle >= 0) ::syscall(SYS_pidfd_send_signal, handle, SIGKILL, nullptr, 0);
}

void terminate_handle(int handle) noexcept {
  if (handle >= 0) ::syscall(SYS_pidfd_send_signal, handle, SIGTERM, nullptr, 0);
}

void reset_signals_in_worker() noexcept {
  // A forked child inherits the parent's handlers (a test framework's crash handler would
  // otherwise run in the worker and carry on with the parent's program).
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  // Ctrl-C goes to the whole process group: it is the application's to handle, not the workers'.
  ::signal(SIGINT, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace mproc::platform
