#include "init_state.hpp"
#include "launch/launcher.hpp"
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
  if (argc >= 2 && argv[1] != nullptr &&
      std::strncmp(argv[1], launch::worker_argument, std::strlen(launch::worker_argument)) == 0) {
    worker::serve_spawned(argv[1] + std::strlen(launch::worker_argument));
  }
  if (argc >= 2 && argv[1] != nullptr &&
      std::strncmp(argv[1], launch::zygote_argument, std::strlen(launch::zygote_argument)) == 0) {
    launch::serve_spawned_zygote(argv[1] + std::strlen(launch::zygote_argument));
  }
  registry::check();
}

bool is_worker() noexcept { return worker::active(); }

}  // namespace mproc
