#include "channel/channel.hpp"
#include "launch/children.hpp"
#include "launch/launcher.hpp"
#include "launch/refusal.hpp"
#include "platform/pipe.hpp"
#include "platform/process.hpp"

#include <mproc/errors.hpp>

#include <string>
#include <utility>
#include <vector>

namespace mproc::launch {

namespace {

constexpr int lifeline_fd_in_child = 3;
constexpr int segment_fd_in_child = 4;

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
    platform::register_lifeline(link.write);
    // Above every target number, so that no dup2 in the child overwrites a source.
    std::error_code dup_error;
    const int child_end = platform::duplicate_above(link.read, 10, dup_error);
    platform::close_fd(link.read);
    // A segment without a name is inherited; a named one is opened by its name.
    const int segment_copy = seg.descriptor() >= 0 && child_end >= 0
                                 ? platform::duplicate_above(seg.descriptor(), 10, dup_error)
                                 : -1;
    const auto give_up = [&](const std::string& action, const std::error_code& ec) {
      platform::close_fd(segment_copy);
      platform::close_fd(child_end);
      platform::unregister_lifeline(link.write);
      platform::close_fd(link.write);
      std::rethrow_exception(refusal_error(action, ec));
    };
    if (child_end < 0) give_up("cannot start worker: cannot pass it its lifeline", dup_error);
    if (seg.descriptor() >= 0 && segment_copy < 0) {
      give_up("cannot start worker: cannot pass it its shared memory", dup_error);
    }
    // The secret goes through the pipe, which only this process and the new worker hold.
    if (!platform::write_all(link.write, secret.data(), secret.size())) {
      give_up("cannot start worker: cannot write to its lifeline pipe",
              {errno, std::generic_category()});
    }
    // Only simple tokens on the command line.
    const std::string address =
        segment_copy >= 0 ? channel::segment::descriptor_address(segment_fd_in_child) : seg.name();
    const std::vector<std::string> args{std::string(worker_argument) + address + "," +
                                        std::to_string(lifeline_fd_in_child)};
    std::vector<std::pair<int, int>> inherit{{child_end, lifeline_fd_in_child}};
    if (segment_copy >= 0) inherit.emplace_back(segment_copy, segment_fd_in_child);
    int pid = -1;
    int tries = 0;
    const std::error_code ec =
        children_.start(platform::running_program(), exe_, args, inherit, pid, tries);
    if (ec) {
      give_up("cannot start worker: cannot run '" + exe_ + "'" +
                  (tries > 1 ? " (tried " + std::to_string(tries) + " times)" : std::string()),
              ec);
    }
    platform::close_fd(segment_copy);
    platform::close_fd(child_end);
    return {pid, link.write};
  }

  platform::exit_status reap(int pid, clock::time_point deadline) override {
    return children_.reap(pid, deadline);
  }

 protected:
  std::error_code watch(const started& s, std::function<void()> on_exit) override {
    const std::error_code ec = children_.watch(s.pid, on_exit);
    if (!ec) return ec;
    // No pidfd (valgrind, seccomp, a kernel before 5.3): the lifeline tells instead. Only the
    // worker holds its read end, so the write end reports an error once the worker is gone.
    // The watcher gets a copy of the write end: cutting the lifeline must not hide the exit.
    std::error_code ec_copy;
    const int copy = platform::duplicate_above(s.lifeline, 0, ec_copy);
    if (copy < 0) return ec_copy;
    return watcher_.watch_descriptor(copy, 0, [call = std::move(on_exit)] {
      call();
      return false;
    });
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
