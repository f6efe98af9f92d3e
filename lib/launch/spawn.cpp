#include "launch/launcher.hpp"
#include "platform/process.hpp"

#include <mproc/errors.hpp>

// Boost.Process 1.81 with BOOST_PROCESS_USE_STD_FS uses boost::optional and <type_traits>
// without including them.
#include <boost/optional.hpp>
#include <type_traits>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/process.hpp>

#include <string>
#include <vector>

namespace bp = boost::process::v2;

namespace mproc::launch {

namespace {

class spawn_launcher final : public launcher {
 public:
  spawn_launcher() : exe_(platform::executable_path()) {}

  start_method method() const noexcept override { return start_method::spawn; }

  int launch(const std::shared_ptr<channel::segment>& seg) override {
    // Only a simple token on the command line; everything else travels through the segment.
    const std::vector<std::string> args{std::string(worker_argument) + seg->name()};
    boost::asio::io_context ctx;
    try {
      bp::process child(ctx.get_executor(), exe_, args);
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
