#include "launch/launcher.hpp"
#include "platform/own_threads.hpp"
#include "platform/process.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/errors.hpp>
#include <mproc/init.hpp>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace mproc::launch {

namespace {

bool available(start_method m) {
  for (const start_method a : available_start_methods()) {
    if (a == m) return true;
  }
  return false;
}

}  // namespace

bool unclaimed_process(const std::vector<std::string>& args);

bool unclaimed_spawned_worker() {
  return !worker::active() && unclaimed_process(platform::command_line());
}

start_method resolve(start_method requested) {
  if (requested == start_method::automatic) {
    if (const char* env = std::getenv("MPROC_START_METHOD"); env != nullptr && *env != '\0') {
      try {
        requested = parse_start_method(env);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("MPROC_START_METHOD: ") + e.what());
      }
    }
  }
  if (requested != start_method::automatic) return requested;
  if (!available(start_method::fork)) return start_method::spawn;
  // Forking a process that has other threads copies their locks in whatever state they are:
  // a forkserver forks from a clean process instead.
  return platform::foreign_threads() == 1 ? start_method::fork : start_method::forkserver;
}

std::unique_ptr<launcher> make_launcher(start_method method, bool allow_fork_with_threads) {
  if (!available(method)) {
    throw start_error("cannot start workers with '" + std::string(to_string(method)) +
                      "': this platform does not have it; use spawn");
  }
  switch (method) {
    case start_method::fork:
      if (const std::size_t threads = platform::foreign_threads();
          threads > 1 && !allow_fork_with_threads) {
        throw start_error(
            "cannot start workers with 'fork': this process has " + std::to_string(threads) +
            " threads that mproc did not start (pools' own threads are not counted), and a "
            "fork copies any lock another thread holds, locked for good (the "
            "classic hang). Use start_method::forkserver or spawn, or create the pool before "
            "starting threads, or accept the risk with pool_options::allow_fork_with_threads");
      }
      return make_fork_launcher();
    case start_method::forkserver:
      return make_forkserver_launcher();
    case start_method::spawn:
      return make_spawn_launcher();
    case start_method::automatic:
      break;
  }
  throw start_error("cannot start workers: no start method resolved");
}

bool unclaimed_process(const std::vector<std::string>& args) {
  return args.size() >= 2 &&
         (args[1].rfind(worker_argument, 0) == 0 || args[1].rfind(zygote_argument, 0) == 0);
}

}  // namespace mproc::launch
