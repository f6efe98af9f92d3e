// A program for the fault tests to kill: it starts a pool, occupies every worker with a task
// that never ends, prints "worker <pid>" for each, then "ready", and waits to be killed. At the
// end of its input it shuts the pool down, cancelling the endless tasks, and exits.
// With --throw-on-sigint (POSIX) it handles Ctrl-C by throwing, so the pool is destroyed by
// unwinding. With --processes it starts two processes (start_process) that never end instead
// of a pool, and prints "worker <pid>" for each.
#include <mproc/mproc.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#if defined(_WIN32)
#include <process.h>
#else
#include <poll.h>
#include <unistd.h>
#endif

int worker_pid(int) {
#if defined(_WIN32)
  return ::_getpid();
#else
  return static_cast<int>(::getpid());
#endif
}

// Blocks for a day: far longer than any test waits.
int hang() {
  std::this_thread::sleep_for(std::chrono::hours(24));
  return 0;
}

void hang_process() { hang(); }

namespace {

struct interrupted : std::runtime_error {
  interrupted() : std::runtime_error("interrupted") {}
};

#if defined(_WIN32)
void prepare_interrupt(bool) {}

void wait_for_the_harness() {
  while (std::getchar() != EOF) {
  }
}
#else
int interrupt_pipe[2];

void on_sigint(int) {
  const char c = 'i';
  [[maybe_unused]] const auto n = ::write(interrupt_pipe[1], &c, 1);
}

void prepare_interrupt(bool throw_on_sigint) {
  if (::pipe(interrupt_pipe) != 0) std::exit(1);
  if (throw_on_sigint) std::signal(SIGINT, on_sigint);
}

// Waits for the harness: a Ctrl-C, or end of input.
void wait_for_the_harness() {
  pollfd fds[2] = {{0, POLLIN, 0}, {interrupt_pipe[0], POLLIN, 0}};
  while (::poll(fds, 2, -1) < 0) {
  }
  if (fds[1].revents != 0) throw interrupted();
}
#endif

void run(const mproc::pool_options& options) {
  mproc::process_pool pool(options);
  std::set<int> pids;
  while (pids.size() < 2) {
    // Two tasks at once: a lone task would go to the same idle worker every time.
    auto first = pool.submit<worker_pid>(0);
    auto second = pool.submit<worker_pid>(0);
    pids.insert(first.get());
    pids.insert(second.get());
  }
  for (const int pid : pids) std::printf("worker %d\n", pid);
  auto a = pool.submit<hang>();
  auto b = pool.submit<hang>();
  std::printf("ready\n");
  std::fflush(stdout);
  wait_for_the_harness();
  pool.shutdown(true, true);
}

void run_processes(const mproc::pool_options& options) {
  mproc::process_options o;
  o.start = options.start;
  mproc::process a = mproc::start_process<hang_process>(o);
  mproc::process b = mproc::start_process<hang_process>(o);
  std::printf("worker %d\nworker %d\nready\n", a.pid(), b.pid());
  std::fflush(stdout);
  wait_for_the_harness();
}

bool has_argument(int argc, char** argv, const char* arg) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], arg) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  prepare_interrupt(has_argument(argc, argv, "--throw-on-sigint"));
  mproc::pool_options options = mproc::parse_pool_options(argc, argv);
  options.workers = 2;
  if (has_argument(argc, argv, "--processes")) {
    run_processes(options);
  } else {
    run(options);
  }
  return 0;
} catch (const interrupted&) {
  return 130;
}
