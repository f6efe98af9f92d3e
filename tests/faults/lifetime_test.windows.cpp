// A whole program using a pool is killed (TerminateProcess) or ends: no worker outlives it for
// more than a moment, and no shared-memory section is left. The Windows counterpart of
// lifetime_test.cpp.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include <windows.h>

namespace {

// victim.exe, which the build puts beside this program.
std::string victim_path() {
  char self[MAX_PATH];
  const DWORD n = ::GetModuleFileNameA(nullptr, self, MAX_PATH);
  std::string path(self, n);
  return path.substr(0, path.find_last_of("\\/") + 1) + "victim.exe";
}

// The victim program, its standard input and output connected to pipes of ours.
struct victim {
  PROCESS_INFORMATION info{};
  HANDLE to_stdin = nullptr;
  HANDLE from_stdout = nullptr;
  std::vector<int> workers;

  explicit victim(const std::string& method, const std::string& extra = "") {
    SECURITY_ATTRIBUTES inheritable{sizeof(SECURITY_ATTRIBUTES), nullptr, TRUE};
    HANDLE child_in = nullptr;
    HANDLE child_out = nullptr;
    BOOST_TEST_REQUIRE(::CreatePipe(&child_in, &to_stdin, &inheritable, 0));
    BOOST_TEST_REQUIRE(::CreatePipe(&from_stdout, &child_out, &inheritable, 0));
    ::SetHandleInformation(to_stdin, HANDLE_FLAG_INHERIT, 0);
    ::SetHandleInformation(from_stdout, HANDLE_FLAG_INHERIT, 0);
    STARTUPINFOA startup{};
    startup.cb = sizeof startup;
    startup.dwFlags = STARTF_USESTDHANDLES;
    startup.hStdInput = child_in;
    startup.hStdOutput = child_out;
    startup.hStdError = ::GetStdHandle(STD_ERROR_HANDLE);
    const std::string exe = victim_path();
    std::string line = "\"" + exe + "\" --start-method=" + method + extra;
    BOOST_TEST_REQUIRE(::CreateProcessA(exe.c_str(), line.data(), nullptr, nullptr, TRUE, 0,
                                        nullptr, nullptr, &startup, &info));
    ::CloseHandle(child_in);
    ::CloseHandle(child_out);
    std::string out;
    while (out.find("ready\n") == std::string::npos && out.find("ready\r\n") == std::string::npos) {
      char buffer[256];
      DWORD n = 0;
      if (!::ReadFile(from_stdout, buffer, sizeof buffer, &n, nullptr) || n == 0) break;
      out.append(buffer, n);
    }
    for (std::size_t at = out.find("worker "); at != std::string::npos;
         at = out.find("worker ", at + 1)) {
      workers.push_back(std::stoi(out.substr(at + 7)));
    }
    BOOST_TEST_REQUIRE(workers.size() == 2U, "the victim said: " << out);
  }
  ~victim() {
    if (to_stdin != nullptr) ::CloseHandle(to_stdin);
    ::CloseHandle(from_stdout);
    ::TerminateProcess(info.hProcess, 1);
    ::CloseHandle(info.hProcess);
    ::CloseHandle(info.hThread);
  }
};

// Handles that name the victim's workers, taken while they run.
std::vector<HANDLE> watch_workers(const victim& v) {
  std::vector<HANDLE> handles;
  for (const int pid : v.workers) {
    handles.push_back(
        ::OpenProcess(SYNCHRONIZE | PROCESS_QUERY_INFORMATION, FALSE, static_cast<DWORD>(pid)));
    BOOST_TEST_REQUIRE(handles.back() != nullptr);
  }
  return handles;
}

void check_nothing_left(const victim& v, const std::vector<HANDLE>& workers) {
  for (std::size_t i = 0; i < workers.size(); ++i) {
    BOOST_TEST(::WaitForSingleObject(workers[i], 5000) == WAIT_OBJECT_0,
               "worker " << v.workers[i] << " outlived its parent");
    ::CloseHandle(workers[i]);
  }
  BOOST_TEST(mproc_test::segments_of(static_cast<int>(v.info.dwProcessId)).empty());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lifetime)

BOOST_AUTO_TEST_CASE(workers_are_in_a_job_that_ends_with_the_application) {
  victim v("spawn");
  const std::vector<HANDLE> workers = watch_workers(v);
  for (const HANDLE w : workers) {
    BOOL in_job = FALSE;
    BOOST_TEST_REQUIRE(::IsProcessInJob(w, nullptr, &in_job), "error " << ::GetLastError());
    BOOST_TEST(in_job == TRUE);
  }
  for (const HANDLE w : workers) ::CloseHandle(w);
}

BOOST_AUTO_TEST_CASE(a_parent_killed_with_terminateprocess_leaves_no_worker_and_no_segment) {
  victim v("spawn");
  const std::vector<HANDLE> workers = watch_workers(v);
  BOOST_TEST_REQUIRE(::TerminateProcess(v.info.hProcess, 137));
  BOOST_TEST_REQUIRE(::WaitForSingleObject(v.info.hProcess, 5000) == WAIT_OBJECT_0);
  check_nothing_left(v, workers);
}

BOOST_AUTO_TEST_CASE(a_parent_killed_with_terminateprocess_leaves_none_of_its_processes) {
  victim v("spawn", " --processes");
  const std::vector<HANDLE> processes = watch_workers(v);
  BOOST_TEST_REQUIRE(::TerminateProcess(v.info.hProcess, 137));
  BOOST_TEST_REQUIRE(::WaitForSingleObject(v.info.hProcess, 5000) == WAIT_OBJECT_0);
  check_nothing_left(v, processes);
}

BOOST_AUTO_TEST_CASE(a_parent_that_shuts_down_with_running_tasks_leaves_nothing) {
  victim v("spawn");
  const std::vector<HANDLE> workers = watch_workers(v);
  ::CloseHandle(v.to_stdin);  // end of input: the victim cancels its endless tasks and exits
  v.to_stdin = nullptr;
  BOOST_TEST_REQUIRE(::WaitForSingleObject(v.info.hProcess, 10000) == WAIT_OBJECT_0);
  DWORD code = 1;
  ::GetExitCodeProcess(v.info.hProcess, &code);
  BOOST_TEST(code == 0U);
  check_nothing_left(v, workers);
}

BOOST_AUTO_TEST_CASE(ctrl_c_reaches_the_application_and_nothing_is_left,
                     *boost::unit_test::precondition(mproc_test::posix_only{
                         "SIGINT to a process group; Windows' console Ctrl-C needs a console "
                         "of its own"})) {}

BOOST_AUTO_TEST_CASE(ctrl_c_handled_by_unwinding_shuts_the_pool_down_promptly,
                     *boost::unit_test::precondition(mproc_test::posix_only{
                         "SIGINT to a process group; Windows' console Ctrl-C needs a console "
                         "of its own"})) {}

BOOST_AUTO_TEST_SUITE_END()
