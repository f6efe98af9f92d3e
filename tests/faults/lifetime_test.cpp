// A whole program using a pool is killed (SIGKILL) or interrupted (Ctrl-C): no worker outlives
// it for more than a moment, and no shared-memory segment is left.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace bdata = boost::unit_test::data;

namespace {

using mproc_test::ended_within;
using mproc_test::open_pidfd;

// The victim program, started in a process group of its own (as a shell starts a job).
struct victim {
  int pid = -1;
  int to_stdin = -1;
  FILE* from_stdout = nullptr;
  std::vector<int> workers;

  explicit victim(const std::vector<std::string>& args) {
    int in[2];
    int out[2];
    BOOST_TEST_REQUIRE(::pipe(in) == 0);
    BOOST_TEST_REQUIRE(::pipe(out) == 0);
    pid = ::fork();
    BOOST_TEST_REQUIRE(pid >= 0);
    if (pid == 0) {
      ::setpgid(0, 0);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      mproc_test::exec_program(MPROC_VICTIM, args);
    }
    ::setpgid(pid, pid);  // also here: whichever runs first, the group exists before a kill
    ::close(in[0]);
    ::close(out[1]);
    to_stdin = in[1];
    from_stdout = ::fdopen(out[0], "r");
    char line[256];
    while (std::fgets(line, sizeof line, from_stdout) != nullptr) {
      int w = 0;
      if (std::sscanf(line, "worker %d", &w) == 1) workers.push_back(w);
      if (std::string(line) == "ready\n") break;
    }
    BOOST_TEST_REQUIRE(workers.size() == 2U);
  }
  ~victim() {
    ::close(to_stdin);
    if (from_stdout != nullptr) std::fclose(from_stdout);
  }

  // Reaps the victim within `timeout_ms`; returns its wait status, or -1 if it did not end.
  int reap_within(int timeout_ms) const {
    const int fd = open_pidfd(pid);
    const bool ended = ended_within(fd, std::chrono::milliseconds(timeout_ms));
    ::close(fd);
    if (!ended) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }
};

void check_nothing_left(const victim& v, const std::vector<int>& worker_fds) {
  for (std::size_t i = 0; i < worker_fds.size(); ++i) {
    BOOST_TEST(ended_within(worker_fds[i], std::chrono::milliseconds(2000)),
               "worker " << v.workers[i] << " outlived its parent");
    ::close(worker_fds[i]);
  }
  BOOST_TEST(mproc_test::segments_of(v.pid).empty());
}

std::vector<int> watch_workers(victim& v) {
  // The workers it reported, and every other process it started (a zygote).
  for (const int d : mproc_test::descendants_of(v.pid)) {
    if (std::find(v.workers.begin(), v.workers.end(), d) == v.workers.end()) v.workers.push_back(d);
  }
  std::vector<int> fds;
  for (const int w : v.workers) {
    fds.push_back(open_pidfd(w));
    BOOST_TEST_REQUIRE(fds.back() >= 0);
  }
  return fds;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lifetime)

BOOST_DATA_TEST_CASE(a_parent_killed_with_sigkill_leaves_no_worker_and_no_segment,
                     bdata::make({"fork", "spawn", "forkserver"}), method) {
  victim v({std::string("--start-method=") + method});
  const std::vector<int> worker_fds = watch_workers(v);
  ::kill(v.pid, SIGKILL);
  const int status = v.reap_within(2000);
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  check_nothing_left(v, worker_fds);
}

// (Not fork under TSan: its own thread makes the second fork process a start_error.)
BOOST_DATA_TEST_CASE(a_parent_killed_with_sigkill_leaves_none_of_its_processes,
                     bdata::make(mproc_test::methods_under_test()), method) {
  victim v({"--start-method=" + std::string(mproc::to_string(method)), "--processes"});
  const std::vector<int> fds = watch_workers(v);  // the processes and their zygotes
  ::kill(v.pid, SIGKILL);
  const int status = v.reap_within(2000);
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  check_nothing_left(v, fds);
}

BOOST_DATA_TEST_CASE(ctrl_c_reaches_the_application_and_nothing_is_left,
                     bdata::make({"fork", "spawn", "forkserver"}), method) {
  victim v({std::string("--start-method=") + method});
  const std::vector<int> worker_fds = watch_workers(v);
  ::kill(-v.pid, SIGINT);  // the whole process group, as a terminal's Ctrl-C does
  const int status = v.reap_within(2000);
  // The application (which keeps the default action) dies of SIGINT; the workers ignore it
  // and leave only because their parent is gone.
  BOOST_TEST((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT));
  check_nothing_left(v, worker_fds);
}

BOOST_DATA_TEST_CASE(ctrl_c_handled_by_unwinding_shuts_the_pool_down_promptly,
                     bdata::make({"fork", "spawn", "forkserver"}), method) {
  victim v({std::string("--start-method=") + method, "--throw-on-sigint"});
  const std::vector<int> worker_fds = watch_workers(v);
  ::kill(-v.pid, SIGINT);
  // The pool's destructor runs during unwinding while both workers run endless tasks.
  const int status = v.reap_within(2000);
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 130));
  check_nothing_left(v, worker_fds);
}

BOOST_AUTO_TEST_SUITE_END()
