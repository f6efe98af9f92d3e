#include "init_state.hpp"
#include "launch/launcher.hpp"
#include "platform/process.hpp"
#include "registry.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/init.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

namespace mproc {

namespace {
bool g_initialized = false;
}

bool initialized() noexcept { return g_initialized; }

void init(int argc, char** argv) {
  g_initialized = true;
  const char* role = argc >= 2 ? argv[1] : nullptr;
  const auto is = [role](const char* prefix) {
    return role != nullptr && std::strncmp(role, prefix, std::strlen(prefix)) == 0;
  };
  // Started from /proc/self/exe, a worker or zygote would be called "exe": it takes the
  // program's name.
  if (is(launch::worker_argument)) {
    platform::name_process(argv[0]);
    worker::serve_spawned(role + std::strlen(launch::worker_argument));
  }
  if (is(launch::zygote_argument)) {
    platform::name_process(argv[0]);
    launch::serve_spawned_zygote(role + std::strlen(launch::zygote_argument));
  }
  registry::check();
  // The program's file as it is now, before a rebuild can replace it (see running_program).
  (void)platform::running_program();
}

bool is_worker() noexcept { return worker::active(); }

}  // namespace mproc
