#include "platform/process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
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

std::optional<process_record> look_up_process(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // The name in parentheses may hold spaces and parentheses: the fields follow the last ')'.
  // Then the state (3rd field) and, 19 fields on, the start time (22nd).
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  std::string state;
  std::string field;
  if (!(fields >> state)) return std::nullopt;
  for (int i = 4; i <= 21 && fields >> field; ++i) {
  }
  process_record r;
  if (!(fields >> r.started)) return std::nullopt;
  r.ended = state == "Z" || state == "X";
  return r;
}

std::string executable_path() {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("/proc/self/exe") : p.string();
}

std::string running_program() {
  // A descriptor on the program's file, opened once: a path through it names that file (the
  // inode) however the path changed since. Opened by path rather than through /proc/self/exe,
  // which under valgrind is valgrind's tool, not the program.
  struct program_file {
    int fd = -1;
    struct stat st {};
  };
  static const program_file program = [] {
    program_file p;
    p.fd = ::open(executable_path().c_str(), O_PATH | O_CLOEXEC);
    if (p.fd >= 0 && ::fstat(p.fd, &p.st) != 0) p.fd = -1;
    return p;
  }();
  // The application may have closed it since (a daemon closes every descriptor), and the
  // number may name another file now: then /proc/self/exe.
  struct stat now {};
  if (program.fd < 0 || ::fstat(program.fd, &now) != 0 || now.st_dev != program.st.st_dev ||
      now.st_ino != program.st.st_ino) {
    return "/proc/self/exe";
  }
  return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(program.fd);
}

namespace {

std::string hex_of(const unsigned char* bytes, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 15]);
  }
  return out;
}

// Finds the GNU build-id note among the main program's loaded segments.
int find_build_id(dl_phdr_info* info, std::size_t /*size*/, void* data) {
  auto& out = *static_cast<std::string*>(data);
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    const unsigned char* const end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const unsigned char* name = p + sizeof(ElfW(Nhdr));
      const unsigned char* desc = name + ((note->n_namesz + 3) & ~3U);
      if (desc + note->n_descsz > end) break;
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
          std::memcmp(name, "GNU", 4) == 0) {
        out = hex_of(desc, note->n_descsz);
        return 1;
      }
      p = desc + ((note->n_descsz + 3) & ~3U);
    }
  }
  return 1;  // only the first object: the main program
}

}  // namespace

std::string build_identity() {
  // Not kept in a static: one being initialised by another thread at a fork would leave its
  // guard taken for good in the child (a forked worker asks for it in its first message).
  std::string out;
  ::dl_iterate_phdr(&find_build_id, &out);
  return out;
}

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

std::error_code spawn_process(const std::string& exe, const std::vector<std::string>& argv,
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
  std::vector<std::string> copies = argv;
  std::vector<char*> pointers;
  pointers.reserve(copies.size() + 1);
  for (std::string& a : copies) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  pid_t child = -1;
  const int rc = ::posix_spawn(&child, exe.c_str(), &actions, &attr, pointers.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return {rc, std::generic_category()};
  pid = static_cast<int>(child);
  return {};
}

void join_worker_job(int /*handle*/) noexcept {}

void name_process(const char* argv0) noexcept {
  if (argv0 == nullptr) return;
  const char* slash = std::strrchr(argv0, '/');
  ::prctl(PR_SET_NAME, slash != nullptr ? slash + 1 : argv0);  // cut to 15 bytes
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
