// The spawn method on Windows: the worker is a new run of this .exe whose mproc::init enters the
// worker loop. Its lifeline is an anonymous pipe: the worker inherits the read end (and no other
// handle), and the application keeps the only write end.

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
    try {
      // The secret goes through the pipe, which only this process and the new worker hold.
      if (!platform::write_all(link.write, secret.data(), secret.size())) {
        throw start_error("cannot start worker: cannot write to its lifeline pipe");
      }
      // Only simple tokens on the command line: the inherited handle keeps its value.
      const std::vector<std::string> args{std::string(worker_argument) + seg.name() + "," +
                                          std::to_string(link.read)};
      const int pid = platform::spawn_process(exe_, args, {{link.read, link.read}});
      platform::close_fd(link.read);
      return {pid, link.write};
    } catch (const start_error&) {
      platform::close_fd(link.read);
      platform::close_fd(link.write);
      throw;
    } catch (const std::system_error& e) {
      platform::close_fd(link.read);
      platform::close_fd(link.write);
      std::rethrow_exception(
          refusal_error("cannot start worker: cannot run '" + exe_ + "'", e.code()));
    }
  }

  platform::exit_status reap(int pid, clock::time_point /*deadline*/) override {
    return platform::reap(pid);  // killed through its handle: it ends at once
  }

 private:
  std::string exe_;
};

}  // namespace

std::unique_ptr<launcher> make_spawn_launcher() { return std::make_unique<spawn_launcher>(); }

}  // namespace mproc::launch
