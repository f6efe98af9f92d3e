// What happens to a whole mpi_pool job when a node supervisor is lost: started here with
// mpiexec, a supervisor is killed with SIGKILL while its node has tasks, and the job must end
// within 10 s with a message, leaving no process behind.
#include "support/support.hpp"

#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The processes whose environment holds `marker`, and the value of OMPI_COMM_WORLD_RANK and
// the command line of each.
struct job_process {
  int pid = 0;
  std::string rank;
  std::string command;
};

std::vector<job_process> processes_with(const std::string& marker) {
  std::vector<job_process> found;
  DIR* proc = ::opendir("/proc");
  BOOST_TEST_REQUIRE(proc != nullptr);
  while (dirent* e = ::readdir(proc)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    const std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
    if (env.find(marker) == std::string::npos) continue;
    job_process p;
    p.pid = pid;
    const std::string key = std::string("OMPI_COMM_WORLD_RANK=");
    const auto at = env.find(key);
    if (at != std::string::npos)
      p.rank = env.substr(at + key.size(), env.find('\0', at) - at - key.size());
    p.command = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    found.push_back(p);
  }
  ::closedir(proc);
  return found;
}

// Reads from `fd` into `out` until `want` appears (with "": until end of file), the pipe
// closes or `deadline` passes; true if `want` appeared (with "": if the pipe closed).
bool read_until(int fd, std::string& out, const std::string& want,
                clock_type::time_point deadline) {
  while (want.empty() || out.find(want) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return want.empty() || out.find(want) != std::string::npos;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_supervisor_killed_with_sigkill_ends_the_job_within_10_s_leaving_nothing) {
  const char* mpiexec = std::getenv("MPROC_TEST_MPIEXEC");
  const char* program = std::getenv("MPROC_TEST_MPI_PROGRAM");
  BOOST_TEST_REQUIRE(mpiexec != nullptr);
  BOOST_TEST_REQUIRE(program != nullptr);
  const std::string marker = "MPROC_MPI_JOB_MARKER=" + std::to_string(std::random_device{}());
  int out[2];
  BOOST_TEST_REQUIRE(::pipe(out) == 0);
  const pid_t job = ::fork();
  BOOST_TEST_REQUIRE(job >= 0);
  if (job == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close(out[0]);
    ::close(out[1]);
    ::setpgid(0, 0);
    ::putenv(const_cast<char*>(marker.c_str()));
    ::setenv("MPROC_MPI_TEST_MODE", "kill", 1);
    mproc_test::exec_program(mpiexec, {"-n", "3", program});
  }
  ::close(out[1]);
  std::string output;
  const bool serving =
      read_until(out[0], output, "serving", clock_type::now() + std::chrono::seconds(60));
  if (!serving) ::kill(-job, SIGKILL);
  BOOST_TEST_REQUIRE(serving, "the job never started serving: " << output);

  // The supervisor of rank 1: the rank's process that is not a worker or zygote of its pool.
  int victim = 0;
  for (const job_process& p : processes_with(marker)) {
    if (p.rank == "1" && p.command.find("--mproc-") == std::string::npos &&
        p.command.find(program) != std::string::npos) {
      victim = p.pid;
    }
  }
  BOOST_TEST_REQUIRE(victim != 0);
  const auto killed_at = clock_type::now();
  BOOST_TEST_REQUIRE(::kill(victim, SIGKILL) == 0);

  // mpiexec ends the job; its output ends when every process of the job has closed the pipe.
  read_until(out[0], output, "", killed_at + std::chrono::seconds(10));
  const int pidfd = mproc_test::open_pidfd(job);
  const bool ended = mproc_test::ended_within(
      pidfd, std::chrono::duration_cast<std::chrono::milliseconds>(
                 killed_at + std::chrono::seconds(10) - clock_type::now()));
  ::close(pidfd);
  if (!ended) ::kill(-job, SIGKILL);
  int status = 0;
  ::waitpid(job, &status, 0);
  ::close(out[0]);
  BOOST_TEST_MESSAGE(output);
  BOOST_TEST(ended, "mpiexec still ran 10 s after the supervisor was killed");
  BOOST_TEST(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  BOOST_TEST(output.find("rank 1") != std::string::npos);
  BOOST_TEST(output.find("signal 9") != std::string::npos);
  BOOST_TEST(output.find("FAILED") == std::string::npos);

  // Nothing of the job is left: no rank, no worker, no zygote (each is given until the
  // 10 s are up to be reaped by whoever owns it).
  std::vector<job_process> left = processes_with(marker);
  while (!left.empty() && clock_type::now() < killed_at + std::chrono::seconds(10)) {
    const int fd = mproc_test::open_pidfd(left.front().pid);
    if (fd >= 0) {
      mproc_test::ended_within(fd, std::chrono::milliseconds(100));
      ::close(fd);
    }
    left = processes_with(marker);
  }
  for (const job_process& p : left)
    BOOST_TEST_ERROR("left behind: pid " << p.pid << " " << p.command);
}
