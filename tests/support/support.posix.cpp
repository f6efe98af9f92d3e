#include "support.hpp"

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace mproc_test {

int current_pid() { return static_cast<int>(::getpid()); }

void set_env(const char* name, const char* value) { ::setenv(name, value, 1); }

void unset_env(const char* name) { ::unsetenv(name); }

std::vector<std::pair<int, int>> all_processes() {
  std::vector<std::pair<int, int>> procs;  // (pid, ppid)
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Fields after the command (which may hold spaces) start after the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    procs.emplace_back(std::stoi(name), ppid);
  }
  return procs;
}

std::size_t open_descriptor_count() {
  std::size_t n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n;
}

std::vector<std::string> segments_of(int pid) {
  std::vector<std::string> out;
  const std::string prefix = "mproc-" + std::to_string(pid) + "-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

// A FIFO in a fresh temporary folder: a task blocks opening it for reading until the test opens
// it for writing, and reading until the test writes.
gate::gate() {
  char templ[] = "/tmp/mproc-test-XXXXXX";
  dir_ = ::mkdtemp(templ);
  token_ = dir_ + "/gate";
  BOOST_TEST_REQUIRE(::mkfifo(token_.c_str(), 0600) == 0);
}

gate::~gate() {
  if (entered_ >= 0) ::close(static_cast<int>(entered_));
  std::filesystem::remove_all(dir_);
}

void gate::wait_until_entered() {
  // Opening the writing end returns once a reader (the task) has opened the other.
  if (entered_ < 0) entered_ = ::open(token_.c_str(), O_WRONLY);
  BOOST_TEST_REQUIRE(entered_ >= 0);
}

void gate::release(char c) {
  wait_until_entered();
  BOOST_TEST_REQUIRE(::write(static_cast<int>(entered_), &c, 1) == 1);
  ::close(static_cast<int>(entered_));
  entered_ = -1;
}

int pass_gate(const std::string& token) {
  const int fd = ::open(token.c_str(), O_RDONLY);
  char c = 0;
  if (fd < 0 || ::read(fd, &c, 1) != 1) throw std::runtime_error("cannot read " + token);
  ::close(fd);
  return c;
}

captured_stderr::captured_stderr() {
  char templ[] = "/tmp/mproc-stderr-XXXXXX";
  const int fd = ::mkstemp(templ);
  BOOST_TEST_REQUIRE(fd >= 0);
  path_ = templ;
  std::fflush(stderr);
  saved_ = ::dup(2);
  ::dup2(fd, 2);
  ::close(fd);
}

captured_stderr::~captured_stderr() {
  std::fflush(stderr);
  ::dup2(saved_, 2);
  ::close(saved_);
  std::filesystem::remove(path_);
}

std::string captured_stderr::text() {
  std::fflush(stderr);
  std::ifstream in(path_);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void reset_peak_memory() {
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM (Linux 4.0 and later)
}

std::size_t peak_memory() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // in kB
  }
  BOOST_FAIL("/proc/self/status has no VmHWM line");
  return 0;
}

void hang_forever() {
  int fds[2];
  if (::pipe(fds) == 0) {
    char c = 0;
    [[maybe_unused]] const auto n = ::read(fds[0], &c, 1);  // nobody writes: for ever
  }
  std::abort();
}

void crash_with_access_fault() {
  std::raise(SIGSEGV);
  std::abort();
}

void kill_self() {
  std::raise(SIGKILL);  // what the kernel's out-of-memory killer sends
  std::abort();
}

bool kill_process(int pid) { return ::kill(pid, SIGKILL) == 0; }

bool process_exists(int pid) { return ::kill(pid, 0) == 0; }

crash_report access_fault_report() { return {SIGSEGV, std::nullopt, "SIGSEGV"}; }
crash_report abort_report() { return {SIGABRT, std::nullopt, "SIGABRT"}; }
crash_report kill_report() { return {SIGKILL, std::nullopt, "SIGKILL"}; }

int open_pidfd(int pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool ended_within(int pidfd, std::chrono::milliseconds timeout) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

void exec_program(const std::string& program, const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;
  std::string exe = program;
  std::vector<char*> argv{exe.data()};
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(exe.c_str(), argv.data());
  ::_exit(127);
}

}  // namespace mproc_test
