#include "platform/process.hpp"

#include "platform/own_threads.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <poll.h>
#include <spawn.h>
#include <sys/eventfd.h>
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

void random_bytes(unsigned char* out, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::getrandom(out + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::system_error(errno, std::generic_category(), "getrandom");
    got += static_cast<std::size_t>(r);
  }
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

int spawn_process(const std::string& exe, const std::vector<std::string>& args,
                  const std::vector<std::pair<int, int>>& inherit) {
  // posix_spawn, not a fork followed by library code: Boost.Process 1.81 allocates in the
  // forked child (asio's notify_fork), which hangs when another thread held the allocator's
  // lock at the moment of the fork.
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
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "posix_spawn " + exe);
  return static_cast<int>(pid);
}

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
  return pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1;
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

struct exit_watcher::impl {
  struct entry {
    int fd;
    short events;
    std::function<bool()> on_ready;
  };

  std::mutex mutex;
  std::vector<entry> entries;  // guarded by mutex
  bool stopping = false;       // guarded by mutex
  int wakeup = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int wakeup_error = wakeup < 0 ? errno : 0;
  std::thread thread;

  void interrupt() const noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wakeup, &one, sizeof one);
  }

  std::error_code add(entry e) {
    if (wakeup < 0) {
      ::close(e.fd);
      return {wakeup_error, std::generic_category()};
    }
    {
      std::lock_guard lock(mutex);
      entries.push_back(std::move(e));
    }
    interrupt();
    return {};
  }

  void run() {
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::lock_guard lock(mutex);
        if (stopping) return;
        fds.assign(1, pollfd{wakeup, POLLIN, 0});
        for (const entry& e : entries) fds.push_back(pollfd{e.fd, e.events, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) {
        std::uint64_t drained = 0;
        [[maybe_unused]] const ssize_t n = ::read(wakeup, &drained, sizeof drained);
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        // Called without the lock: a callback may add entries (a zygote's report of a worker
        // that it has started since).
        std::function<bool()> call;
        {
          std::lock_guard lock(mutex);
          const auto it = std::find_if(entries.begin(), entries.end(),
                                       [&](const entry& e) { return e.fd == fds[i].fd; });
          if (it == entries.end()) continue;
          call = it->on_ready;
        }
        if (call()) continue;
        std::function<bool()> dropped;  // destroyed without the lock: it may own a zygote
        {
          std::lock_guard lock(mutex);
          const auto it = std::find_if(entries.begin(), entries.end(),
                                       [&](const entry& e) { return e.fd == fds[i].fd; });
          if (it == entries.end()) continue;
          ::close(it->fd);
          dropped = std::move(it->on_ready);
          entries.erase(it);
        }
      }
    }
  }
};

exit_watcher::exit_watcher() : impl_(std::make_unique<impl>()) {}

exit_watcher::~exit_watcher() {
  stop();
  if (impl_->wakeup >= 0) ::close(impl_->wakeup);
}

std::error_code exit_watcher::watch(int pid, std::function<void()> on_exit) {
  // A pidfd becomes readable when the process ends, even if it already has (as a zombie).
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return {errno, std::generic_category()};
  return impl_->add({fd, POLLIN, [call = std::move(on_exit)] {
                       call();
                       return false;
                     }});
}

std::error_code exit_watcher::watch_descriptor(int fd, short events,
                                               std::function<bool()> on_ready) {
  return impl_->add({fd, events, std::move(on_ready)});
}

void exit_watcher::start() {
  // Without its wake-up descriptor the thread could not be stopped.
  if (impl_->wakeup < 0) throw std::system_error(impl_->wakeup_error, std::generic_category());
  if (!impl_->thread.joinable()) {
    impl_->thread = start_own_thread([this] { impl_->run(); });
  }
}

void exit_watcher::stop() noexcept {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->interrupt();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::vector<impl::entry> dropped;
  {
    std::lock_guard lock(impl_->mutex);
    dropped.swap(impl_->entries);
  }
  for (const impl::entry& e : dropped) ::close(e.fd);
}

}  // namespace mproc::platform
