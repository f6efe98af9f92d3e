#include "launch/launcher.hpp"
#include "platform/process.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/errors.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <unistd.h>

namespace mproc::launch {

namespace {

class fork_launcher final : public launcher {
 public:
  start_method method() const noexcept override { return start_method::fork; }

  int launch(const std::shared_ptr<channel::segment>& seg, int lifeline) override {
    // The child inherits the mapping, so the name is not needed: removing it now means nothing
    // can leak under /dev/shm even if both processes are killed.
    seg->unlink();
    // Unflushed output would otherwise be written twice, once by each process.
    std::fflush(stdout);
    std::fflush(stderr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      throw start_error(std::string("cannot start worker: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
      platform::reset_signals_in_worker();
      platform::close_lifelines_in_child();
      worker::serve(seg, lifeline);
    }
    return static_cast<int>(pid);
  }
};

}  // namespace

std::unique_ptr<launcher> make_fork_launcher() { return std::make_unique<fork_launcher>(); }

}  // namespace mproc::launch
