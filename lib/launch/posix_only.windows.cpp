// The fork and forkserver methods need fork(), which Windows does not have. make_launcher
// refuses them before these are reached (available_start_methods() is {spawn}); they exist so
// that every path gives the same clear error.

#include "launch/launcher.hpp"

#include <mproc/errors.hpp>

#include <cstdio>
#include <cstdlib>

namespace mproc::launch {

namespace {

[[noreturn]] void refuse(const char* method) {
  throw start_error(std::string("cannot start workers with '") + method +
                    "': it needs fork(), which only POSIX systems have; use spawn");
}

}  // namespace

std::unique_ptr<launcher> make_fork_launcher() { refuse("fork"); }

std::unique_ptr<launcher> make_forkserver_launcher() { refuse("forkserver"); }

void serve_spawned_zygote(const std::string& /*token*/) {
  std::fprintf(stderr, "mproc: cannot serve as a forkserver: there is none on Windows\n");
  std::fflush(stderr);
  std::_Exit(2);
}

}  // namespace mproc::launch
