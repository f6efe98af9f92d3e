// The spawn method on Windows: the worker is a new run of this .exe whose mproc::init enters the
// worker loop. Its lifeline is an anonymous pipe: the worker inherits the read end (and no other
// handle), and the application keeps the only write end.

#include "launch/children.hpp"
#include "launch/launcher.hpp"
#include "launch/refusal.hpp"
#include "platform/pipe.hpp"
#include "platform/process.hpp"

#include <mproc/errors.hpp>

#include <string>
#include <vector>

namespace mproc::launch {

namespace {

class spawn_launcher final : public launcher {
 public:
  spawn_launcher() : exe_(platform::executable_path()) {}

  start_method method() const noexcept override { return start_method::spawn; }

  started launch(const channel::segment& seg, const std::string& secret) override {
    platform::pipe_ends link;
    if (const std::error_code ec = platform::make_pipe(link)) {
      std::rethrow_exception(
          refusal_error("cannot start worker: cannot create its lifeline pipe", ec));
    }
    const auto give_up = [&](const std::string& action, const std::error_code& ec) {
      platform::close_fd(link.read);
      platform::close_fd(link.write);
      std::rethrow_exception(refusal_error(action, ec));
    };
    // The secret goes through the pipe, which only this process and the new worker hold.
    if (!platform::write_all(link.write, secret.data(), secret.size())) {
      give_up("cannot start worker: cannot write to its lifeline pipe",
              std::make_error_code(std::errc::broken_pipe));
    }
    // Only simple tokens on the command line: the inherited handle keeps its value.
    const std::vector<std::string> args{std::string(worker_argument) + seg.name() + "," +
                                        std::to_string(link.read)};
    int pid = -1;
    int tries = 0;
    if (const std::error_code ec = children_.start(platform::running_program(), exe_, args,
                                                   {{link.read, link.read}}, pid, tries)) {
      give_up("cannot start worker: cannot run '" + exe_ + "'" +
                  (tries > 1 ? " (tried " + std::to_string(tries) + " times)" : std::string()),
              ec);
    }
    platform::close_fd(link.read);
    return {pid, link.write};
  }

  platform::exit_status reap(int pid, clock::time_point deadline) override {
    return children_.reap(pid, deadline);
  }

  int open_handle(int pid) noexcept override { return children_.open_handle(pid); }

 protected:
  std::error_code watch(const started& s, std::function<void()> on_exit) override {
    return children_.watch(s.pid, std::move(on_exit));
  }

 private:
  // The program's path, for messages and the workers' names; what runs it is asked for at
  // each start (platform::running_program), since the application may close descriptors.
  std::string exe_;
  children children_{watcher_};
};

}  // namespace

std::unique_ptr<launcher> make_spawn_launcher() { return std::make_unique<spawn_launcher>(); }

}  // namespace mproc::launch
