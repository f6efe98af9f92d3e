#include "launch/launcher.hpp"
#include "platform/process.hpp"

#include <mproc/errors.hpp>

#include <fcntl.h>

#include <string>
#include <vector>

namespace mproc::launch {

namespace {

constexpr int lifeline_fd_in_child = 3;

class spawn_launcher final : public launcher {
 public:
  spawn_launcher() : exe_(platform::executable_path()) {}

  start_method method() const noexcept override { return start_method::spawn; }

  started launch(const std::shared_ptr<channel::segment>& seg, const std::string& secret) override {
    platform::pipe_ends link;
    if (const std::error_code ec = platform::make_pipe(link)) {
      throw start_error("cannot start worker: cannot create its lifeline pipe: " + ec.message());
    }
    platform::register_lifeline(link.write);
    // Above every target number, so that no dup2 in the child overwrites a source.
    const int child_end = ::fcntl(link.read, F_DUPFD_CLOEXEC, 10);
    platform::close_fd(link.read);
    try {
      // The secret goes through the pipe, which only this process and the new worker hold.
      if (child_end < 0 || !platform::write_all(link.write, secret.data(), secret.size())) {
        throw start_error("cannot start worker: cannot write to its lifeline pipe");
      }
      // Only simple tokens on the command line.
      const std::vector<std::string> args{std::string(worker_argument) + seg->name() + "," +
                                          std::to_string(lifeline_fd_in_child)};
      const int pid = platform::spawn_process(exe_, args, {{child_end, lifeline_fd_in_child}});
      platform::close_fd(child_end);
      return {pid, link.write};
    } catch (const start_error&) {
      platform::close_fd(child_end);
      platform::unregister_lifeline(link.write);
      platform::close_fd(link.write);
      throw;
    } catch (const std::exception& e) {
      platform::close_fd(child_end);
      platform::unregister_lifeline(link.write);
      platform::close_fd(link.write);
      throw start_error("cannot start worker: cannot run '" + exe_ + "': " + e.what());
    }
  }

  platform::exit_status reap(int pid) override { return platform::reap(pid); }

 private:
  std::string exe_;
};

}  // namespace

std::unique_ptr<launcher> make_spawn_launcher() { return std::make_unique<spawn_launcher>(); }

}  // namespace mproc::launch
