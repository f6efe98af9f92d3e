#include "support.hpp"

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <io.h>
#include <windows.h>

// After windows.h:
#include <psapi.h>
#include <tlhelp32.h>
#include <winternl.h>

extern "C" NTSTATUS NTAPI NtOpenDirectoryObject(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES);
extern "C" NTSTATUS NTAPI NtQueryDirectoryObject(HANDLE, PVOID, ULONG, BOOLEAN, BOOLEAN, PULONG,
                                                 PULONG);

namespace mproc_test {

namespace {

std::wstring widen(const std::string& s) { return std::wstring(s.begin(), s.end()); }

HANDLE open_event(const std::string& name) {
  return ::OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, widen(name).c_str());
}

}  // namespace

int current_pid() { return static_cast<int>(::GetCurrentProcessId()); }

void set_env(const char* name, const char* value) { ::_putenv_s(name, value); }

void unset_env(const char* name) { ::_putenv_s(name, ""); }

namespace {

// When process `pid` was created (0 if it cannot be asked).
std::uint64_t creation_time(DWORD pid) {
  const HANDLE h = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (h == nullptr) return 0;
  FILETIME created{}, exited{}, kernel{}, user{};
  const bool ok = ::GetProcessTimes(h, &created, &exited, &kernel, &user) != 0;
  ::CloseHandle(h);
  return ok ? (std::uint64_t{created.dwHighDateTime} << 32) | created.dwLowDateTime : 0;
}

}  // namespace

std::vector<std::pair<int, int>> all_processes() {
  std::vector<std::pair<int, int>> procs;
  const HANDLE snap = ::CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (snap == INVALID_HANDLE_VALUE) return procs;
  PROCESSENTRY32W entry{};
  entry.dwSize = sizeof entry;
  for (BOOL more = ::Process32FirstW(snap, &entry); more; more = ::Process32NextW(snap, &entry)) {
    procs.emplace_back(static_cast<int>(entry.th32ProcessID),
                       static_cast<int>(entry.th32ParentProcessID));
  }
  ::CloseHandle(snap);
  // Windows keeps a process's parent id after the parent has ended, and reuses ids: a process
  // older than the one that now has its parent's id is not that one's child.
  for (auto& [pid, ppid] : procs) {
    const std::uint64_t born = creation_time(static_cast<DWORD>(pid));
    const std::uint64_t parent_born = creation_time(static_cast<DWORD>(ppid));
    if (born != 0 && parent_born != 0 && born < parent_born) ppid = 0;
  }
  return procs;
}

std::size_t open_descriptor_count() {
  DWORD n = 0;
  ::GetProcessHandleCount(::GetCurrentProcess(), &n);
  return n;
}

std::vector<std::string> segments_of(int pid) {
  // Named sections and events live in the session's object directory until their last
  // handle goes: list the ones named after this process.
  std::vector<std::string> out;
  DWORD session = 0;
  ::ProcessIdToSessionId(::GetCurrentProcessId(), &session);
  const std::wstring dir = L"\\Sessions\\" + std::to_wstring(session) + L"\\BaseNamedObjects";
  UNICODE_STRING name;
  ::RtlInitUnicodeString(&name, dir.c_str());
  OBJECT_ATTRIBUTES attributes;
  InitializeObjectAttributes(&attributes, &name, 0, nullptr, nullptr);
  HANDLE handle = nullptr;
  constexpr ACCESS_MASK directory_query = 0x0001;
  BOOST_TEST_REQUIRE(NtOpenDirectoryObject(&handle, directory_query, &attributes) == 0);
  const std::wstring prefix = L"mproc-" + std::to_wstring(pid) + L"-";
  struct directory_entry {
    UNICODE_STRING name;
    UNICODE_STRING type;
  };
  std::vector<char> buffer(1 << 16);
  ULONG context = 0;
  ULONG length = 0;
  for (bool first = true;; first = false) {
    if (NtQueryDirectoryObject(handle, buffer.data(), static_cast<ULONG>(buffer.size()), TRUE,
                               first, &context, &length) != 0) {
      break;
    }
    const auto* e = reinterpret_cast<const directory_entry*>(buffer.data());
    const std::wstring object(e->name.Buffer, e->name.Length / sizeof(wchar_t));
    if (object.rfind(prefix, 0) == 0) out.emplace_back(object.begin(), object.end());
  }
  ::CloseHandle(handle);
  return out;
}

// Two named events (the task has arrived; the test lets it through) and a file with the byte.
gate::gate() {
  static std::atomic<int> counter{0};
  const std::string base =
      "mproc-test-gate-" + std::to_string(current_pid()) + "-" + std::to_string(counter++);
  dir_ = (std::filesystem::temp_directory_path() / base).string();
  std::filesystem::create_directories(dir_);
  token_ = base + "|" + dir_ + "\\value";
  entered_ = reinterpret_cast<std::intptr_t>(
      ::CreateEventW(nullptr, TRUE, FALSE, widen(base + "-entered").c_str()));
  open_ = reinterpret_cast<std::intptr_t>(
      ::CreateEventW(nullptr, TRUE, FALSE, widen(base + "-open").c_str()));
  BOOST_TEST_REQUIRE((entered_ != 0 && open_ != 0));
}

gate::~gate() {
  ::CloseHandle(reinterpret_cast<HANDLE>(entered_));
  ::CloseHandle(reinterpret_cast<HANDLE>(open_));
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void gate::wait_until_entered() {
  BOOST_TEST_REQUIRE(::WaitForSingleObject(reinterpret_cast<HANDLE>(entered_), 60000) ==
                     WAIT_OBJECT_0);
}

void gate::release(char c) {
  std::ofstream(dir_ + "\\value", std::ios::binary) << c;
  ::SetEvent(reinterpret_cast<HANDLE>(open_));
}

int pass_gate(const std::string& token) {
  const std::string base = token.substr(0, token.find('|'));
  const std::string value = token.substr(token.find('|') + 1);
  const HANDLE entered = open_event(base + "-entered");
  const HANDLE open = open_event(base + "-open");
  if (entered == nullptr || open == nullptr) throw std::runtime_error("no gate " + base);
  ::SetEvent(entered);
  ::WaitForSingleObject(open, INFINITE);
  ::CloseHandle(entered);
  ::CloseHandle(open);
  char c = 0;
  if (!(std::ifstream(value, std::ios::binary) >> c)) throw std::runtime_error("no value");
  return c;
}

captured_stderr::captured_stderr() {
  char dir[MAX_PATH];
  char file[MAX_PATH];
  BOOST_TEST_REQUIRE(::GetTempPathA(MAX_PATH, dir) != 0);
  BOOST_TEST_REQUIRE(::GetTempFileNameA(dir, "mpe", 0, file) != 0);
  path_ = file;
  std::fflush(stderr);
  const int fd = ::_open(file, _O_WRONLY | _O_TRUNC | _O_BINARY);
  BOOST_TEST_REQUIRE(fd >= 0);
  saved_ = ::_dup(2);
  ::_dup2(fd, 2);
  ::_close(fd);
}

captured_stderr::~captured_stderr() {
  std::fflush(stderr);
  ::_dup2(saved_, 2);
  ::_close(saved_);
  std::filesystem::remove(path_);
}

std::string captured_stderr::text() {
  std::fflush(stderr);
  std::ifstream in(path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void reset_peak_memory() {}

std::size_t peak_memory() {
  PROCESS_MEMORY_COUNTERS counters{};
  counters.cb = sizeof counters;
  if (!::K32GetProcessMemoryInfo(::GetCurrentProcess(), &counters, sizeof counters)) {
    BOOST_FAIL("GetProcessMemoryInfo failed");
  }
  return counters.PeakWorkingSetSize;
}

void hang_forever() {
  for (;;) ::Sleep(INFINITE);
}

void crash_with_access_fault() {
  // A real fault, through a pointer the compiler cannot see is null.
  int* volatile nowhere = nullptr;
  *nowhere = 1;
  std::abort();
}

void kill_self() {
  ::TerminateProcess(::GetCurrentProcess(), 9);
  std::abort();
}

bool kill_process(int pid) {
  const HANDLE h = ::OpenProcess(PROCESS_TERMINATE, FALSE, static_cast<DWORD>(pid));
  if (h == nullptr) return false;
  const bool killed = ::TerminateProcess(h, 9) != 0;
  ::CloseHandle(h);
  return killed;
}

bool process_exists(int pid) {
  // A process that has ended lives on as an object while handles to it are open: it does not
  // count (Windows has no reaping to wait for).
  const HANDLE h = ::OpenProcess(SYNCHRONIZE, FALSE, static_cast<DWORD>(pid));
  if (h == nullptr) return false;
  const bool running = ::WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
  ::CloseHandle(h);
  return running;
}

crash_report access_fault_report() {
  return {std::nullopt, static_cast<int>(0xC0000005), "0xC0000005 access violation"};
}
// The C runtime's abort() ends the process with exit code 3.
crash_report abort_report() { return {std::nullopt, 3, "exited with code 3"}; }
crash_report kill_report() { return {std::nullopt, 9, "exited with code 9"}; }

}  // namespace mproc_test
