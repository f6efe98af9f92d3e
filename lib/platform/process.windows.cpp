#include "platform/process.hpp"

#include "platform/handle.windows.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <windows.h>
// After windows.h:
#include <bcrypt.h>
#include <shellapi.h>
#include <tlhelp32.h>

namespace mproc::platform {

namespace {

// The exit code this process gives the workers it kills: ERROR_PROCESS_ABORTED ("the process
// terminated unexpectedly"), decoded by exit_code_meaning.
constexpr UINT killed_exit_code = ERROR_PROCESS_ABORTED;

// Every worker is placed in this job: closing its last handle, which happens when this process
// ends however it ends, kills every process in it.
HANDLE worker_job() {
  static const HANDLE job = [] {
    HANDLE j = ::CreateJobObjectW(nullptr, nullptr);
    if (j != nullptr) {
      JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits{};
      limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
      ::SetInformationJobObject(j, JobObjectExtendedLimitInformation, &limits, sizeof limits);
    }
    return j;
  }();
  return job;
}

}  // namespace

int current_pid() noexcept { return static_cast<int>(::GetCurrentProcessId()); }

std::optional<process_record> look_up_process(int pid) {
  const HANDLE h = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE,
                                 static_cast<DWORD>(pid));
  if (h == nullptr) return std::nullopt;
  FILETIME created{};
  FILETIME exited{};
  FILETIME kernel{};
  FILETIME user{};
  const bool known = ::GetProcessTimes(h, &created, &exited, &kernel, &user) != 0;
  process_record r;
  r.started = (static_cast<std::uint64_t>(created.dwHighDateTime) << 32) | created.dwLowDateTime;
  r.ended = ::WaitForSingleObject(h, 0) == WAIT_OBJECT_0;
  ::CloseHandle(h);
  if (!known) return std::nullopt;
  return r;
}

std::size_t thread_count() {
  const HANDLE snap = ::CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snap == INVALID_HANDLE_VALUE) return 1;
  const DWORD self = ::GetCurrentProcessId();
  std::size_t n = 0;
  THREADENTRY32 entry{};
  entry.dwSize = sizeof entry;
  for (BOOL more = ::Thread32First(snap, &entry); more; more = ::Thread32Next(snap, &entry)) {
    if (entry.th32OwnerProcessID == self) ++n;
  }
  ::CloseHandle(snap);
  return n == 0 ? 1 : n;
}

std::string executable_path() {
  std::wstring path(MAX_PATH, L'\0');
  for (;;) {
    const DWORD n = ::GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
    if (n == 0) throw last_error("GetModuleFileNameW");
    if (n < path.size()) {
      path.resize(n);
      return narrow(path.c_str());
    }
    path.resize(path.size() * 2);
  }
}

std::string running_program() { return executable_path(); }

std::string build_identity() {
  const auto* base = reinterpret_cast<const unsigned char*>(::GetModuleHandleW(nullptr));
  const auto* dos = reinterpret_cast<const IMAGE_DOS_HEADER*>(base);
  const auto* nt = reinterpret_cast<const IMAGE_NT_HEADERS*>(base + dos->e_lfanew);
  char text[64];
  std::snprintf(text, sizeof text, "%08lx%08lx%08lx",
                static_cast<unsigned long>(nt->FileHeader.TimeDateStamp),
                static_cast<unsigned long>(nt->OptionalHeader.SizeOfImage),
                static_cast<unsigned long>(nt->OptionalHeader.CheckSum));
  return text;
}

std::vector<std::string> command_line() {
  int argc = 0;
  wchar_t** argv = ::CommandLineToArgvW(::GetCommandLineW(), &argc);
  std::vector<std::string> out;
  if (argv == nullptr) return out;
  for (int i = 0; i < argc; ++i) out.push_back(narrow(argv[i]));
  ::LocalFree(argv);
  return out;
}

std::error_code random_bytes(unsigned char* out, std::size_t n) noexcept {
  if (!BCRYPT_SUCCESS(::BCryptGenRandom(nullptr, out, static_cast<ULONG>(n),
                                        BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
    return std::make_error_code(std::errc::io_error);
  }
  return {};
}

std::string error_name(const std::error_code& /*ec*/) { return {}; }

std::string signal_name(int signal) { return "signal " + std::to_string(signal); }

std::string exit_code_meaning(int code) {
  struct known {
    DWORD code;
    const char* name;
  };
  static constexpr known table[] = {
      {0xC0000005, "access violation"},
      {0xC0000006, "in-page error"},
      {0xC000001D, "illegal instruction"},
      {0xC0000017, "out of memory"},
      {0xC000008C, "array bounds exceeded"},
      {0xC000008E, "floating-point division by zero"},
      {0xC0000094, "integer division by zero"},
      {0xC0000095, "integer overflow"},
      {0xC0000096, "privileged instruction"},
      {0xC00000FD, "stack overflow"},
      {0xC000013A, "terminated by Ctrl-C"},
      {0xC0000374, "heap corruption"},
      {0xC0000409, "stack buffer overrun (fail-fast)"},
      {0xC0000420, "assertion failure"},
      {0x80000003, "breakpoint"},
      {killed_exit_code, "terminated by mproc"},
  };
  const auto value = static_cast<DWORD>(code);
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08lX", static_cast<unsigned long>(value));
  for (const known& k : table) {
    if (k.code == value) return std::string(hex) + " " + k.name;
  }
  // Another NTSTATUS of the error severity: its number says more in hex than in decimal.
  if ((value & 0xC0000000) == 0xC0000000) return hex;
  return {};
}

void join_worker_job(int handle) noexcept {
  if (const HANDLE job = worker_job()) ::AssignProcessToJobObject(job, to_handle(handle));
}

void name_process(const char* /*argv0*/) noexcept {}

exit_status exit_status_of(int wait_status) noexcept { return {wait_status, std::nullopt}; }

void kill_process(int pid) noexcept {
  if (const HANDLE h = ::OpenProcess(PROCESS_TERMINATE, FALSE, static_cast<DWORD>(pid))) {
    ::TerminateProcess(h, killed_exit_code);
    ::CloseHandle(h);
  }
}

int open_handle(int pid) noexcept {
  std::error_code ignored;
  return open_handle(pid, ignored);
}

int open_handle(int pid, std::error_code& ec) noexcept {
  ec.clear();
  const HANDLE h =
      ::OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                    static_cast<DWORD>(pid));
  if (h == nullptr) ec = {static_cast<int>(::GetLastError()), std::system_category()};
  return h == nullptr ? -1 : to_int(h);
}

void kill_handle(int handle) noexcept {
  if (handle != -1) ::TerminateProcess(to_handle(handle), killed_exit_code);
}

// Windows has no request to terminate: the process ends as it does when killed.
void terminate_handle(int handle) noexcept { kill_handle(handle); }

void reset_signals_in_worker() noexcept {
  // Ctrl-C reaches every process on the console: it is the application's to handle.
  ::SetConsoleCtrlHandler(nullptr, TRUE);
  // A crash ends the worker at once, with its NTSTATUS, instead of waiting on a dialog.
  ::SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
}

}  // namespace mproc::platform
