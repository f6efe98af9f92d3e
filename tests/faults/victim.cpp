// A program for the fault tests to kill: it starts a pool, occupies every worker with a task
// that never ends, prints "worker <pid>" for each, then "ready", and waits to be killed.
// With --throw-on-sigint it handles Ctrl-C by throwing, so the pool is destroyed by unwinding.
#include <mproc/mproc.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>

#include <poll.h>
#include <unistd.h>

int worker_pid(int) { return static_cast<int>(::getpid()); }

// Blocks for ever: reads a pipe that nobody writes.
int hang() {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  char c = 0;
  return static_cast<int>(::read(fds[0], &c, 1));
}

namespace {

int interrupt_pipe[2];

void on_sigint(int) {
  const char c = 'i';
  [[maybe_unused]] const auto n = ::write(interrupt_pipe[1], &c, 1);
}

struct interrupted : std::runtime_error {
  interrupted() : std::runtime_error("interrupted") {}
};

void run(const mproc::pool_options& options) {
  mproc::process_pool pool(options);
  std::set<int> pids;
  while (pids.size() < 2) pids.insert(pool.submit<worker_pid>(0).get());
  for (const int pid : pids) std::printf("worker %d\n", pid);
  auto a = pool.submit<hang>();
  auto b = pool.submit<hang>();
  std::printf("ready\n");
  std::fflush(stdout);
  // Waits for the harness: a Ctrl-C, or end of input.
  pollfd fds[2] = {{0, POLLIN, 0}, {interrupt_pipe[0], POLLIN, 0}};
  while (::poll(fds, 2, -1) < 0) {
  }
  if (fds[1].revents != 0) throw interrupted();
  pool.shutdown(true, true);
}

}  // namespace

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  if (::pipe(interrupt_pipe) != 0) return 1;
  if (argc > 2 && std::strcmp(argv[2], "--throw-on-sigint") == 0) std::signal(SIGINT, on_sigint);
  mproc::pool_options options = mproc::parse_pool_options(argc, argv);
  options.workers = 2;
  run(options);
  return 0;
} catch (const interrupted&) {
  return 130;
}
