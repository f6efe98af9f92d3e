// The operating system says no, for real, to a small pool program (refusal_probe): pidfd_open
// refused by seccomp, threads and processes refused by RLIMIT_NPROC, a fork that fails for a
// moment (a preloaded fork), descriptors refused by RLIMIT_NOFILE, a full /dev/shm, a stopped
// zygote. Each run must end within a bound with the documented outcome, its message naming
// the cause, and leave no process and no segment behind.

#include "support/support.hpp"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bdata = boost::unit_test::data;

namespace {

// Every run is over well within this; one that is not has hung.
constexpr auto run_limit = std::chrono::seconds(90);

using mproc_test::ended_within;
using mproc_test::open_pidfd;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

char state_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  int ignored = 0;
  std::string name;
  char state = '?';
  in >> ignored >> name >> state;
  return state;
}

// How a run of the probe went.
struct outcome {
  std::string output;  // the probe's one line
  std::string errors;  // what it wrote to stderr
  int status = -1;     // its wait status
  std::chrono::milliseconds took{0};
  int left_running = 0;  // processes still running after it ended
  std::vector<std::string> left_segments;
};

// Runs `probe` with `args` and `env` ("NAME=value") added to the environment. This process is
// a subreaper, so every process the probe leaves behind becomes its child and is seen here.
outcome run(const std::string& probe, const std::vector<std::string>& args,
            const std::vector<std::string>& env = {}) {
  static const bool subreaper = ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
  BOOST_TEST_REQUIRE(subreaper);
  BOOST_TEST_REQUIRE(std::filesystem::exists(probe), probe << " is missing");
  const std::string dir =
      std::filesystem::temp_directory_path() / ("mproc-refusal-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string out_path = dir + "/out";
  const std::string err_path = dir + "/err";
  // Children the test itself runs beside the probe are not the probe's leftovers.
  const std::vector<int> before = mproc_test::direct_children();
  const auto start = std::chrono::steady_clock::now();
  const int pid = ::fork();
  BOOST_TEST_REQUIRE(pid >= 0);
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
    mproc_test::exec_program(probe, args);
  }
  const int fd = open_pidfd(pid);
  const bool ended = ended_within(fd, run_limit);
  if (!ended) ::kill(pid, SIGKILL);
  outcome o;
  ::waitpid(pid, &o.status, 0);
  ::close(fd);
  o.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  o.output = read_file(out_path);
  o.errors = read_file(err_path);
  BOOST_TEST(ended, "the probe did not end within " << run_limit.count() << " s: " << o.output
                                                    << o.errors);
  // Whatever the probe left: orphans are ours now. A dead one is reaped; a live one is given
  // a moment (it may be leaving), then counted and killed.
  for (const int child : mproc_test::direct_children()) {
    if (std::find(before.begin(), before.end(), child) != before.end()) continue;
    if (state_of(child) != 'Z') {
      const int cfd = open_pidfd(child);
      if (cfd < 0 || !ended_within(cfd, std::chrono::seconds(5))) {
        ++o.left_running;
        ::kill(child, SIGKILL);
      }
      if (cfd >= 0) ::close(cfd);
    }
    ::waitpid(child, nullptr, 0);
  }
  o.left_segments = mproc_test::segments_of(pid);
  for (const std::string& s : o.left_segments) std::filesystem::remove("/dev/shm/" + s);
  std::filesystem::remove_all(dir);
  return o;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Checks what every run must show: a clean exit, in time, with nothing left.
void check_clean(const outcome& o) {
  BOOST_TEST(WIFEXITED(o.status));
  BOOST_TEST(WEXITSTATUS(o.status) == 0, "probe output: " << o.output << o.errors);
  BOOST_TEST(o.took < run_limit);
  BOOST_TEST(o.left_running == 0);
  BOOST_TEST(o.left_segments.empty());
}

// Checks that the run failed to start a pool, saying `what` failed and why.
void check_start_error(const outcome& o, const std::vector<std::string>& parts) {
  check_clean(o);
  BOOST_TEST(o.output.rfind("start_error: ", 0) == 0U, o.output);
  for (const std::string& p : parts)
    BOOST_TEST(contains(o.output, p), "'" << p << "' in " << o.output);
}

std::string method_name(mproc::start_method m) { return std::string(mproc::to_string(m)); }

bool as_root() { return ::geteuid() == 0; }

struct needs_root {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(as_root());
    r.message() << "needs root (a new user id for RLIMIT_NPROC, a mount namespace)";
    return r;
  }
};

// The sanitizer must not itself need a thread at exit while threads are refused.
const std::vector<std::string> no_leak_check{"ASAN_OPTIONS=detect_leaks=0"};

// What the probe's tasks add up to: 42 per task when workers see the application's memory.
std::string expected_sum(mproc::start_method m, int tasks) {
  const int planted = m == mproc::start_method::fork ? 42 : 0;
  return "ok " + std::to_string(planted * tasks + tasks * (tasks - 1) / 2) + "\n";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(refusals)

BOOST_DATA_TEST_CASE(without_pidfd_open_exits_are_still_seen_and_the_pool_works,
                     bdata::make(mproc_test::methods_under_test()), method) {
  const outcome o = run(MPROC_PROBE, {method_name(method), "2", "6", "pidfd"});
  check_clean(o);
  BOOST_TEST(o.output == expected_sum(method, 6));
}

BOOST_AUTO_TEST_CASE(a_refused_watching_thread_is_a_start_error_naming_eagain,
                     *boost::unit_test::precondition(needs_root())) {
  // One task to spare: the zygote. The pool's first thread is refused.
  const outcome o = run(MPROC_PROBE, {"fork", "1", "3", "nproc", "1"}, no_leak_check);
  check_start_error(o, {"thread that watches workers' exits", "EAGAIN", "RLIMIT_NPROC"});
}

BOOST_AUTO_TEST_CASE(a_refused_driver_thread_is_a_start_error_and_the_worker_is_ended,
                     *boost::unit_test::precondition(needs_root())) {
  // The zygote, the watching thread, the worker and its lifeline thread; then the driver.
  const outcome o = run(MPROC_PROBE, {"fork", "1", "3", "nproc", "4"}, no_leak_check);
  check_start_error(o, {"thread that drives worker 1 of 1", "EAGAIN", "RLIMIT_NPROC"});
}

BOOST_AUTO_TEST_CASE(a_worker_whose_thread_is_refused_reports_why,
                     *boost::unit_test::precondition(needs_root())) {
  const outcome o = run(MPROC_PROBE, {"fork", "1", "3", "nproc", "3"}, no_leak_check);
  check_start_error(o, {"it could not start", "thread that watches the application", "EAGAIN"});
}

BOOST_AUTO_TEST_CASE(a_lasting_process_limit_is_a_start_error_naming_eagain,
                     *boost::unit_test::precondition(needs_root())) {
  // The application's own fork of its zygote.
  check_start_error(run(MPROC_PROBE, {"fork", "1", "3", "nproc", "0"}, no_leak_check),
                    {"fork failed (tried 10 times)", "EAGAIN", "RLIMIT_NPROC"});
  // The zygote's fork of a worker: the healthy zygote is kept, not taken for dead.
  const outcome o = run(MPROC_PROBE, {"fork", "1", "3", "nproc", "2"}, no_leak_check);
  check_start_error(o, {"the zygote's fork failed", "EAGAIN", "RLIMIT_NPROC"});
  BOOST_TEST(!contains(o.errors, "starting a new one"), o.errors);
  // posix_spawn.
  check_start_error(run(MPROC_PROBE, {"spawn", "1", "3", "nproc", "1"}, no_leak_check),
                    {"cannot run", "EAGAIN", "RLIMIT_NPROC"});
}

BOOST_AUTO_TEST_CASE(a_fork_refused_for_a_moment_is_retried_by_the_same_zygote,
                     *boost::unit_test::precondition(mproc_test::not_under_tsan())) {
  // The application's fork of the zygote passes; the zygote's first three forks fail.
  const outcome o = run(MPROC_PROBE, {"fork", "2", "4", "none"},
                        {"LD_PRELOAD=" MPROC_FAIL_FORK, "MPROC_TEST_FORK_FAILURES=1,3",
                         "ASAN_OPTIONS=verify_asan_link_order=0"});
  check_clean(o);
  // Every worker still sees the application's memory: no spawned zygote replaced the first.
  BOOST_TEST(o.output == expected_sum(mproc::start_method::fork, 4));
  BOOST_TEST(!contains(o.errors, "zygote"), o.errors);
}

BOOST_DATA_TEST_CASE(running_out_of_descriptors_is_a_start_error_naming_emfile,
                     bdata::make(mproc_test::methods_under_test()), method) {
  // Built without sanitizers: UBSan's own checks need descriptors too.
  int refused = 0;
  bool shared_memory_named = false;
  for (int extra = 0; extra <= 12; ++extra) {
    const outcome o =
        run(MPROC_PLAIN_PROBE, {method_name(method), "2", "2", "nofile", std::to_string(extra)});
    check_clean(o);
    if (o.output.rfind("ok ", 0) == 0) {
      BOOST_TEST(o.output == expected_sum(method, 2));
      continue;
    }
    ++refused;
    BOOST_TEST(o.output.rfind("start_error: ", 0) == 0U, extra << ": " << o.output);
    BOOST_TEST(contains(o.output, "Too many open files (EMFILE)"), extra << ": " << o.output);
    BOOST_TEST(contains(o.output, "RLIMIT_NOFILE"), extra << ": " << o.output);
    shared_memory_named =
        shared_memory_named || contains(o.output, "cannot create its shared memory");
  }
  BOOST_TEST(refused >= 3);
  // Some limit lets the pool's own descriptors open and then refuses a worker's segment.
  if (method == mproc::start_method::spawn) BOOST_TEST(shared_memory_named);
}

// Every payload size class, under direct copies and with them refused: the same results.
BOOST_DATA_TEST_CASE(large_messages_are_copied_directly_or_through_the_rings_alike,
                     bdata::make(mproc_test::methods_under_test()), method) {
  const outcome direct =
      run(MPROC_PROBE, {method_name(method), "2", "0", "large"}, {"MPROC_DEBUG=1"});
  check_clean(direct);
  BOOST_TEST(direct.output == "ok large 6\n");
  BOOST_TEST(contains(direct.errors, "are copied directly between processes"), direct.errors);
  const outcome refused =
      run(MPROC_PROBE, {method_name(method), "2", "0", "large+no-cma"}, {"MPROC_DEBUG=1"});
  check_clean(refused);
  BOOST_TEST(refused.output == "ok large 6\n");
  BOOST_TEST(contains(refused.errors, "large messages go through shared memory"), refused.errors);
  BOOST_TEST(contains(refused.errors, "ENOSYS"), refused.errors);
}

// The 200 MiB echo is copied 64 MiB at a time: the sixth large copy is its second.
BOOST_DATA_TEST_CASE(a_worker_killed_in_the_middle_of_a_direct_copy_fails_only_its_task,
                     bdata::make(mproc_test::methods_under_test()) *
                         bdata::make({std::string("writev"), std::string("readv")}),
                     method, call) {
  const outcome o = run(MPROC_PROBE, {method_name(method), "2", "0", "large"},
                        {"LD_PRELOAD=" MPROC_KILL_ON_COPY, "MPROC_TEST_KILL_ON_COPY=" + call + ",6",
                         "ASAN_OPTIONS=verify_asan_link_order=0"});
  check_clean(o);
  BOOST_TEST(o.output == "ok large 5 crashed@209715200\n", o.output << o.errors);
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(needs_root()))
BOOST_DATA_TEST_CASE(a_64_mib_dev_shm_as_in_docker_holds_a_pool_of_40_workers,
                     bdata::make(mproc_test::methods_under_test()), method) {
  // Channels take no room in /dev/shm (40 named ones would need 80 MiB); every task runs in a
  // worker of its own, so 80 workers start in all.
  const outcome o = run(MPROC_PROBE, {method_name(method), "40", "40", "small-shm", "64"});
  check_clean(o);
  BOOST_TEST(o.output == expected_sum(method, 40));
}

BOOST_DATA_TEST_CASE(without_memfd_create_channels_are_named_and_the_pool_works,
                     bdata::make(mproc_test::methods_under_test()), method) {
  const outcome o = run(MPROC_PROBE, {method_name(method), "2", "4", "no-memfd"});
  check_clean(o);
  BOOST_TEST(o.output == expected_sum(method, 4));
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(needs_root()))
BOOST_DATA_TEST_CASE(a_full_dev_shm_is_a_start_error_naming_it_when_channels_need_names,
                     bdata::make(mproc_test::methods_under_test()), method) {
  check_start_error(run(MPROC_PROBE, {method_name(method), "2", "2", "small-shm+no-memfd", "1"}),
                    {"cannot create its shared memory", "ENOSPC", "(/dev/shm) is full",
                     "/dev/shm is 1 MiB with", "room for 0 workers"});
}

BOOST_AUTO_TEST_CASE(a_stopped_zygote_is_replaced_within_a_bound,
                     *boost::unit_test::precondition(mproc_test::not_under_tsan())) {
  // Every task needs a new worker (max_tasks_per_worker = 1), so the pool asks the stopped
  // zygote, misses its answer, and goes on with a spawned one.
  const outcome o = run(MPROC_PROBE, {"fork", "2", "4", "stop-zygote"});
  check_clean(o);
  BOOST_TEST(o.output.rfind("ok ", 0) == 0U, o.output);
  BOOST_TEST(contains(o.errors, "stopped by a signal or a debugger"), o.errors);
  BOOST_TEST(o.took < std::chrono::seconds(30));
}

BOOST_DATA_TEST_CASE(a_program_replaced_and_deleted_while_it_runs_still_starts_its_own_workers,
                     bdata::make(mproc_test::methods_under_test()), method) {
  // Run from a copy of its own, which it replaces with another mproc program and then deletes.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("mproc-rebuilt-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path copy = dir / "probe";
  std::filesystem::copy_file(MPROC_PROBE, copy, std::filesystem::copy_options::overwrite_existing);
  const outcome o =
      run(copy.string(), {method_name(method), "2", "3", "replace-self", MPROC_VICTIM});
  check_clean(o);
  const int planted = method == mproc::start_method::fork ? 42 : 0;
  BOOST_TEST(o.output == "ok " + std::to_string(4 * (3 * planted + 3)) + "\n", o.errors);
  BOOST_TEST(!std::filesystem::exists(copy));
  std::filesystem::remove_all(dir);
}

// Reads what `fd` gives until `marker` has arrived, end of file, or `limit`.
std::string read_until(int fd, const std::string& marker, std::chrono::seconds limit) {
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (text.find(marker) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(needs_root()))
BOOST_DATA_TEST_CASE(a_pool_leaves_the_arrays_of_a_program_in_another_pid_namespace_alone,
                     bdata::make(mproc_test::methods_under_test()), method) {
  // The holder runs in a pid namespace of its own, as pid 99991 there (a pid that names
  // nobody, or somebody else, here), and shares /dev/shm with this one.
  int to_holder[2];
  int from_holder[2];
  BOOST_TEST_REQUIRE(::pipe2(to_holder, O_CLOEXEC) == 0);
  BOOST_TEST_REQUIRE(::pipe2(from_holder, O_CLOEXEC) == 0);
  const int holder = ::fork();
  BOOST_TEST_REQUIRE(holder >= 0);
  if (holder == 0) {
    ::dup2(to_holder[0], 0);
    ::dup2(from_holder[1], 1);
    mproc_test::exec_program("/usr/bin/unshare",
                             {"--pid", "--fork", "--mount-proc", "/bin/sh", "-c",
                              "echo 99990 > /proc/sys/kernel/ns_last_pid && \"$0\" \"$@\"",
                              MPROC_PROBE, method_name(method), "1", "1", "hold-array"});
  }
  ::close(to_holder[0]);
  ::close(from_holder[1]);
  const std::string ready = read_until(from_holder[0], "ready\n", std::chrono::seconds(30));
  BOOST_TEST_REQUIRE(ready == "ready\n");
  // A pool here sweeps /dev/shm as it starts.
  const outcome o = run(MPROC_PROBE, {method_name(method), "1", "2", "none"});
  check_clean(o);
  BOOST_TEST(o.output == expected_sum(method, 2));
  BOOST_TEST(::write(to_holder[1], "go\n", 3) == 3);
  ::close(to_holder[1]);
  const std::string result = read_until(from_holder[0], "\n", std::chrono::seconds(60));
  ::close(from_holder[0]);
  int status = 0;
  ::waitpid(holder, &status, 0);
  BOOST_TEST(result == "ok 112\n");
  BOOST_TEST(WIFEXITED(status));
}

// The start time of `pid`, as /proc/<pid>/stat's 22nd field gives it.
unsigned long long start_time_of(int pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 1));
  std::string field;
  for (int i = 3; i <= 21; ++i) fields >> field;
  unsigned long long start = 0;
  fields >> start;
  return start;
}

BOOST_AUTO_TEST_CASE(the_sweep_removes_only_segments_whose_creator_is_provably_gone) {
  struct stat ns {};
  BOOST_TEST_REQUIRE(::stat("/proc/self/ns/pid", &ns) == 0);
  const int dead = ::fork();  // a pid that names nobody once reaped
  BOOST_TEST_REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const int self = ::getpid();
  const unsigned long long start = start_time_of(self);
  const std::string here = std::to_string(ns.st_ino);
  const std::string elsewhere = std::to_string(ns.st_ino + 1);
  const std::string shm = "/dev/shm/";
  const std::string tag = "-test" + std::to_string(self);
  const std::vector<std::string> removed{
      "mproc-" + std::to_string(dead) + "-" + here + "-1-gone" + tag,
      // Its pid is alive, but it is somebody else: another start time.
      "mproc-" + std::to_string(self) + "-" + here + "-" + std::to_string(start + 1) + "-reused" +
          tag};
  const std::vector<std::string> kept{
      "mproc-" + std::to_string(self) + "-" + here + "-" + std::to_string(start) + "-alive" + tag,
      "mproc-" + std::to_string(dead) + "-" + elsewhere + "-1-other-namespace" + tag,
      "mproc-" + std::to_string(dead) + "-old-format" + tag};
  for (const auto& names : {removed, kept}) {
    for (const std::string& n : names) std::ofstream(shm + n) << "x";
  }
  const outcome o = run(MPROC_PROBE, {"spawn", "1", "1", "none"});
  check_clean(o);
  for (const std::string& n : removed) BOOST_TEST(!std::filesystem::exists(shm + n), n);
  for (const std::string& n : kept) {
    BOOST_TEST(std::filesystem::exists(shm + n), n);
    std::filesystem::remove(shm + n);
  }
}

BOOST_AUTO_TEST_SUITE_END()
