#include "platform/process.hpp"

#include "platform/handle.windows.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <map>
#include <mutex>
#include <thread>

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

// Handles of the children this process started, by pid: Windows names a process for good only
// through a handle, and a pid is not reused while one is open.
struct child_table {
  std::mutex mutex;
  std::map<int, HANDLE> handles;  // guarded by mutex

  HANDLE find(int pid) {
    std::lock_guard lock(mutex);
    const auto it = handles.find(pid);
    return it == handles.end() ? nullptr : it->second;
  }
};

child_table& children() {
  static child_table t;
  return t;
}

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

std::vector<std::string> command_line() {
  int argc = 0;
  wchar_t** argv = ::CommandLineToArgvW(::GetCommandLineW(), &argc);
  std::vector<std::string> out;
  if (argv == nullptr) return out;
  for (int i = 0; i < argc; ++i) out.push_back(narrow(argv[i]));
  ::LocalFree(argv);
  return out;
}

void random_bytes(unsigned char* out, std::size_t n) {
  if (!BCRYPT_SUCCESS(::BCryptGenRandom(nullptr, out, static_cast<ULONG>(n),
                                        BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
    throw std::system_error(std::make_error_code(std::errc::io_error), "BCryptGenRandom");
  }
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

namespace {

// Quotes one argument the way CommandLineToArgvW and the C runtime split it back.
void append_quoted(std::wstring& line, const std::wstring& arg) {
  if (!arg.empty() && arg.find_first_of(L" \t\n\v\"") == std::wstring::npos) {
    line += arg;
    return;
  }
  line += L'"';
  std::size_t backslashes = 0;
  for (const wchar_t c : arg) {
    if (c == L'\\') {
      ++backslashes;
      continue;
    }
    // Backslashes are literal unless they precede a quote: then each is doubled.
    line.append(c == L'"' ? backslashes * 2 + 1 : backslashes, L'\\');
    backslashes = 0;
    line += c;
  }
  line.append(backslashes * 2, L'\\');
  line += L'"';
}

}  // namespace

int spawn_process(const std::string& exe, const std::vector<std::string>& args,
                  const std::vector<std::pair<int, int>>& inherit) {
  // CreateProcessW itself, not Boost.Process v2: under Wine 8 every child that Boost.Process
  // 1.81's default_launcher started stopped in the loader before main, while CreateProcessW
  // with the same STARTUPINFOEX ran them.
  const std::wstring program = widen(exe);
  std::wstring line;
  append_quoted(line, program);
  for (const std::string& a : args) {
    line += L' ';
    append_quoted(line, widen(a));
  }

  // Only the handles asked for are inherited (an attribute list), never another worker's.
  std::vector<HANDLE> handles;
  for (const auto& [value, target] : inherit) {
    HANDLE h = to_handle(value);
    if (!::SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT)) {
      throw last_error("SetHandleInformation");
    }
    handles.push_back(h);
  }
  SIZE_T size = 0;
  ::InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
  std::vector<char> storage(size);
  auto* attributes = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(storage.data());
  if (!::InitializeProcThreadAttributeList(attributes, 1, 0, &size)) {
    throw last_error("InitializeProcThreadAttributeList");
  }
  STARTUPINFOEXW startup{};
  startup.StartupInfo.cb = sizeof startup;
  if (!handles.empty()) {
    if (!::UpdateProcThreadAttribute(attributes, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                     handles.data(), handles.size() * sizeof(HANDLE), nullptr,
                                     nullptr)) {
      ::DeleteProcThreadAttributeList(attributes);
      throw last_error("UpdateProcThreadAttribute");
    }
    startup.lpAttributeList = attributes;
  }
  PROCESS_INFORMATION info{};
  BOOL ok = FALSE;
  DWORD error = 0;
  // A failure that is not about the program itself (seen under Wine as ERROR_INTERNAL_ERROR
  // while other processes were being torn down) is tried again before it becomes an error.
  for (int attempt = 0; attempt < 3 && !ok; ++attempt) {
    ok = ::CreateProcessW(program.c_str(), line.data(), nullptr, nullptr,
                          handles.empty() ? FALSE : TRUE, EXTENDED_STARTUPINFO_PRESENT, nullptr,
                          nullptr, &startup.StartupInfo, &info);
    error = ok ? 0 : ::GetLastError();
    if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND ||
        error == ERROR_ACCESS_DENIED || error == ERROR_BAD_EXE_FORMAT) {
      break;
    }
  }
  ::DeleteProcThreadAttributeList(attributes);
  for (HANDLE h : handles) ::SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
  if (!ok) {
    throw std::system_error(static_cast<int>(error), std::system_category(),
                            "CreateProcess " + exe + " (error " + std::to_string(error) + ")");
  }
  ::CloseHandle(info.hThread);
  // Should the job refuse it (a job that forbids nesting), the lifeline still ends the worker.
  if (const HANDLE job = worker_job()) ::AssignProcessToJobObject(job, info.hProcess);
  const int pid = static_cast<int>(info.dwProcessId);
  std::lock_guard lock(children().mutex);
  children().handles[pid] = info.hProcess;
  return pid;
}

exit_status exit_status_of(int wait_status) noexcept { return {wait_status, std::nullopt}; }

exit_status reap(int pid) noexcept {
  HANDLE h = nullptr;
  {
    std::lock_guard lock(children().mutex);
    const auto it = children().handles.find(pid);
    if (it == children().handles.end()) return {};
    h = it->second;
    children().handles.erase(it);
  }
  ::WaitForSingleObject(h, INFINITE);
  DWORD code = 0;
  exit_status st;
  if (::GetExitCodeProcess(h, &code)) st.code = static_cast<int>(code);
  ::CloseHandle(h);
  return st;
}

void kill_process(int pid) noexcept {
  if (const HANDLE h = children().find(pid)) ::TerminateProcess(h, killed_exit_code);
}

int open_handle(int pid) noexcept {
  const HANDLE h = children().find(pid);
  HANDLE copy = nullptr;
  if (h == nullptr || !::DuplicateHandle(::GetCurrentProcess(), h, ::GetCurrentProcess(), &copy, 0,
                                         FALSE, DUPLICATE_SAME_ACCESS)) {
    return -1;
  }
  return to_int(copy);
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

struct exit_watcher::impl {
  struct entry {
    HANDLE process = nullptr;
    HANDLE wait = nullptr;
    std::function<void()> on_exit;
    std::atomic<bool> done{false};
  };

  std::mutex mutex;
  std::list<entry> entries;  // guarded by mutex; stable addresses for the callbacks

  static void CALLBACK fired(void* context, BOOLEAN /*timed_out*/) {
    auto* e = static_cast<entry*>(context);
    e->on_exit();
    e->done.store(true);
  }

  // Unregisters every wait (`only_done`: those whose callback has run), waiting for callbacks in
  // progress. Called without the mutex held by anyone who could be in a callback.
  void release(bool only_done) {
    std::list<entry> gone;
    {
      std::lock_guard lock(mutex);
      for (auto it = entries.begin(); it != entries.end();) {
        const auto next = std::next(it);
        if (!only_done || it->done.load()) gone.splice(gone.end(), entries, it);
        it = next;
      }
    }
    for (entry& e : gone) {
      ::UnregisterWaitEx(e.wait, INVALID_HANDLE_VALUE);
      ::CloseHandle(e.process);
    }
  }
};

exit_watcher::exit_watcher() : impl_(std::make_unique<impl>()) {}

exit_watcher::~exit_watcher() { stop(); }

std::error_code exit_watcher::watch(int pid, std::function<void()> on_exit) {
  impl_->release(true);
  const HANDLE h = children().find(pid);
  HANDLE copy = nullptr;
  if (h == nullptr || !::DuplicateHandle(::GetCurrentProcess(), h, ::GetCurrentProcess(), &copy,
                                         SYNCHRONIZE, FALSE, 0)) {
    return {h == nullptr ? ERROR_INVALID_PARAMETER : static_cast<int>(::GetLastError()),
            std::system_category()};
  }
  std::lock_guard lock(impl_->mutex);
  impl::entry& e = impl_->entries.emplace_back();
  e.process = copy;
  e.on_exit = std::move(on_exit);
  if (!::RegisterWaitForSingleObject(&e.wait, copy, &impl::fired, &e, INFINITE,
                                     WT_EXECUTEONLYONCE)) {
    const std::error_code ec(static_cast<int>(::GetLastError()), std::system_category());
    ::CloseHandle(copy);
    impl_->entries.pop_back();
    return ec;
  }
  return {};
}

std::error_code exit_watcher::watch_descriptor(int /*fd*/, short /*events*/,
                                               std::function<bool()> /*on_ready*/) {
  return std::make_error_code(std::errc::not_supported);
}

// The system's wait threads watch from the moment `watch` registers a process.
void exit_watcher::start() {}

void exit_watcher::stop() noexcept { impl_->release(false); }

}  // namespace mproc::platform
