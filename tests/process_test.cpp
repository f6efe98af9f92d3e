// start_process and mproc::process under every start method: exit codes, exceptions, crashes
// and signals, join_for's bounds, terminate and kill, destruction while running, and many
// short-lived processes in a row with nothing left behind.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace bdata = boost::unit_test::data;
using mproc_test::clean_check;

namespace procs {

int planted = 0;

int exit_with(int code) { return code; }
void do_nothing() {}
void throw_runtime(const std::string& message) { throw std::runtime_error(message); }
void crash() { mproc_test::crash_with_access_fault(); }
void hang() { mproc_test::hang_forever(); }
int planted_value() { return planted; }
int sum_and_length(const std::vector<int>& v, const std::string& s) {
  int sum = static_cast<int>(s.size());
  for (const int x : v) sum += x;
  return sum;
}

}  // namespace procs

namespace {

const auto methods = mproc_test::methods_under_test();

}  // namespace

BOOST_AUTO_TEST_SUITE(processes)

BOOST_DATA_TEST_CASE_F(clean_check, the_exit_code_is_what_the_function_returns,
                       bdata::make(methods), method) {
  for (const int code : {0, 3, 255}) {
    mproc::process p = mproc::start_process<procs::exit_with>(mproc_test::started_by(method), code);
    BOOST_TEST(p.pid() > 0);
    const mproc::process_exit e = p.join();
    BOOST_TEST((e.exit_code == code));
    BOOST_TEST(!e.signal.has_value());
    BOOST_TEST(e.describe().find("exited with code " + std::to_string(code)) != std::string::npos,
               e.describe());
    // Joining again tells the same.
    BOOST_TEST((p.join().exit_code == code));
  }
  BOOST_TEST(
      (mproc::start_process<procs::do_nothing>(mproc_test::started_by(method)).join().exit_code ==
       0));
}

BOOST_DATA_TEST_CASE_F(clean_check, arguments_are_passed_and_converted, bdata::make(methods),
                       method) {
  const std::vector<int> v{10, 20, 30};
  mproc::process p =
      mproc::start_process<procs::sum_and_length>(mproc_test::started_by(method), v, "abcd");
  BOOST_TEST((p.join().exit_code == 64));
}

BOOST_DATA_TEST_CASE_F(clean_check, a_fork_process_sees_the_memory_of_the_moment_it_started,
                       bdata::make(methods), method) {
  procs::planted = 42;
  mproc::process p = mproc::start_process<procs::planted_value>(mproc_test::started_by(method));
  procs::planted = 7;
  const int expected = method == mproc::start_method::fork ? 42 : 0;
  BOOST_TEST((p.join().exit_code == expected));
  procs::planted = 0;
}

BOOST_DATA_TEST_CASE_F(clean_check, an_exception_is_told_on_stderr_and_the_exit_code_is_1,
                       bdata::make(methods), method) {
  std::string text;
  mproc::process_exit e;
  {
    mproc_test::captured_stderr err;
    e = mproc::start_process<procs::throw_runtime>(mproc_test::started_by(method),
                                                   "the disk is full")
            .join();
    text = err.text();
  }
  BOOST_TEST((e.exit_code == 1));
  BOOST_TEST(text.find("std::runtime_error") != std::string::npos, text);
  BOOST_TEST(text.find("the disk is full") != std::string::npos, text);
  BOOST_TEST(text.find("procs::throw_runtime") != std::string::npos, text);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_crash_is_told_as_worker_crashed_tells_it,
                       bdata::make(methods), method) {
  const mproc::process_exit e =
      mproc::start_process<procs::crash>(mproc_test::started_by(method)).join();
  const mproc_test::crash_report r = mproc_test::access_fault_report();
  BOOST_TEST((e.signal == r.signal));
  if (r.exit_code) BOOST_TEST((e.exit_code == r.exit_code));
  BOOST_TEST(e.describe().find(r.name) != std::string::npos, e.describe());
}

BOOST_DATA_TEST_CASE_F(clean_check, join_for_waits_its_limit_and_kill_ends_the_process,
                       bdata::make(methods), method) {
  mproc::process p = mproc::start_process<procs::hang>(mproc_test::started_by(method));
  BOOST_TEST(p.running());
  const auto before = std::chrono::steady_clock::now();
  BOOST_TEST(!p.join_for(std::chrono::milliseconds(200)).has_value());
  const auto waited = std::chrono::steady_clock::now() - before;
  BOOST_TEST(waited >= std::chrono::milliseconds(200));
  BOOST_TEST(waited < std::chrono::seconds(20));
  BOOST_TEST(p.running());
  p.kill();
  const std::optional<mproc::process_exit> e = p.join_for(std::chrono::seconds(20));
  BOOST_TEST_REQUIRE(e.has_value());
  BOOST_TEST(!p.running());
  // SIGKILL; Windows: TerminateProcess with mproc's own exit code.
  const std::string how = mproc_test::on_windows ? "terminated by mproc" : "SIGKILL";
  BOOST_TEST(e->describe().find(how) != std::string::npos, e->describe());
  p.kill();  // after the end: nothing happens
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{
    "SIGTERM; on Windows terminate() kills"}))
BOOST_DATA_TEST_CASE_F(clean_check, terminate_sends_sigterm, bdata::make(methods), method) {
  mproc::process p = mproc::start_process<procs::hang>(mproc_test::started_by(method));
  p.terminate();
  const mproc::process_exit e = p.join();
  BOOST_TEST((e.signal == SIGTERM));
  BOOST_TEST(e.describe().find("SIGTERM") != std::string::npos, e.describe());
}

BOOST_DATA_TEST_CASE_F(clean_check, a_process_destroyed_while_it_runs_is_killed_and_reaped,
                       bdata::make(methods), method) {
  int pid = -1;
  {
    mproc::process p = mproc::start_process<procs::hang>(mproc_test::started_by(method));
    pid = p.pid();
    BOOST_TEST(mproc_test::process_exists(pid));
  }
  BOOST_TEST(!mproc_test::process_exists(pid));
}

BOOST_DATA_TEST_CASE_F(clean_check, a_moved_process_is_owned_by_its_new_object,
                       bdata::make(methods), method) {
  mproc::process p = mproc::start_process<procs::exit_with>(mproc_test::started_by(method), 5);
  mproc::process q = std::move(p);
  BOOST_TEST(p.pid() == -1);  // NOLINT(bugprone-use-after-move): what a moved-from one says
  BOOST_CHECK_THROW(p.join(), std::logic_error);
  BOOST_TEST((q.join().exit_code == 5));
  mproc::process empty;
  BOOST_TEST(empty.pid() == -1);
  BOOST_CHECK_THROW(empty.kill(), std::logic_error);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_hundred_processes_in_a_row_leave_nothing_behind,
                       bdata::make(methods), method) {
  // The first few set up what stays (the sanitizer's and the runtime's own descriptors).
  for (int i = 0; i < 3; ++i)
    mproc::start_process<procs::exit_with>(mproc_test::started_by(method), i).join();
  const std::size_t descriptors = mproc_test::open_descriptor_count();
  int sum = 0;
  for (int i = 0; i < 100; ++i) {
    sum += *mproc::start_process<procs::exit_with>(mproc_test::started_by(method), i % 7)
                .join()
                .exit_code;
  }
  BOOST_TEST(sum == 295);  // 14 rounds of 0..6 (14 * 21), then 0 and 1
  BOOST_TEST(mproc_test::open_descriptor_count() == descriptors);
  BOOST_TEST(mproc_test::leftover_segments().empty());
  BOOST_TEST(mproc_test::child_pids().empty());
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{"SIGCHLD"}))
BOOST_DATA_TEST_CASE_F(clean_check, the_applications_sigchld_handler_is_left_alone,
                       bdata::make(methods), method) {
#if !defined(_WIN32)
  struct sigaction mine {};
  mine.sa_handler = [](int) {};
  sigemptyset(&mine.sa_mask);
  struct sigaction saved {};
  BOOST_TEST_REQUIRE(::sigaction(SIGCHLD, &mine, &saved) == 0);
  BOOST_TEST(
      (mproc::start_process<procs::exit_with>(mproc_test::started_by(method), 9).join().exit_code ==
       9));
  struct sigaction now {};
  BOOST_TEST_REQUIRE(::sigaction(SIGCHLD, nullptr, &now) == 0);
  BOOST_TEST(now.sa_handler == mine.sa_handler);
  ::sigaction(SIGCHLD, &saved, nullptr);
#else
  (void)method;
#endif
}

BOOST_AUTO_TEST_SUITE_END()
