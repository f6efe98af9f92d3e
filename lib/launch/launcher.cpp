#include "launch/launcher.hpp"
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

bool unclaimed_spawned_worker() {
  if (worker::active()) return false;
  const std::vector<std::string> args = platform::command_line();
  return args.size() >= 2 && args[1].rfind(worker_argument, 0) == 0;
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
  // Forking a process that has other threads copies their locks in whatever state they are.
  return platform::thread_count() == 1 ? start_method::fork : start_method::spawn;
}

std::unique_ptr<launcher> make_launcher(start_method method) {
  if (method == start_method::forkserver) {
    throw start_error(
        "cannot start workers with 'forkserver': not yet available; use fork or spawn");
  }
  if (!available(method)) {
    throw start_error("cannot start workers with '" + std::string(to_string(method)) +
                      "': this platform does not have it; use spawn");
  }
  switch (method) {
    case start_method::fork:
      return make_fork_launcher();
    case start_method::spawn:
      return make_spawn_launcher();
    case start_method::forkserver:
    case start_method::automatic:
      break;
  }
  throw start_error("cannot start workers: no start method resolved");
}

}  // namespace mproc::launch
