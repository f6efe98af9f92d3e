#include "launch/launcher.hpp"
#include "platform/process.hpp"

#include <mproc/errors.hpp>

// Boost.Process 1.81 with BOOST_PROCESS_USE_STD_FS uses boost::optional and <type_traits>
// without including them.
#include <boost/optional.hpp>
#include <type_traits>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>

#include <fcntl.h>

#include <string>
#include <vector>

namespace bp = boost::process::v2;

namespace mproc::launch {

namespace {

// Hands the lifeline to the child under a fixed number. (Boost.Process 1.81's own bind_fd
// returns no value from on_setup.)
struct inherit_fd {
  int target;
  int fd;
  bp::error_code on_setup(bp::posix::default_launcher& launcher, const bp::filesystem::path&,
                          const char* const*) {
    launcher.fd_whitelist.push_back(target);
    return {};
  }
  bp::error_code on_exec_setup(bp::posix::default_launcher&, const bp::filesystem::path&,
                               const char* const*) const {
    // dup2 onto itself would keep close-on-exec set: clear it explicitly then.
    const int r = fd == target ? ::fcntl(fd, F_SETFD, 0) : ::dup2(fd, target);
    if (r == -1) return bp::error_code(errno, bp::system_category());
    return {};
  }
};

constexpr int lifeline_fd_in_child = 3;

class spawn_launcher final : public launcher {
 public:
  spawn_launcher() : exe_(platform::executable_path()) {}

  start_method method() const noexcept override { return start_method::spawn; }

  int launch(const std::shared_ptr<channel::segment>& seg, int lifeline) override {
    // Only simple tokens on the command line; the secret comes through the lifeline.
    const std::vector<std::string> args{std::string(worker_argument) + seg->name() + "," +
                                        std::to_string(lifeline_fd_in_child)};
    boost::asio::io_context ctx;
    try {
      bp::process child(ctx.get_executor(), exe_, args, inherit_fd{lifeline_fd_in_child, lifeline});
      const int pid = static_cast<int>(child.id());
      child.detach();  // the pool watches, kills and reaps it from now on
      return pid;
    } catch (const std::exception& e) {
      throw start_error("cannot start worker: cannot run '" + exe_ + "': " + e.what());
    }
  }

 private:
  std::string exe_;
};

}  // namespace

std::unique_ptr<launcher> make_spawn_launcher() { return std::make_unique<spawn_launcher>(); }

}  // namespace mproc::launch
