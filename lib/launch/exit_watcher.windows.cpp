// On Windows a spawned worker's Boost.Process object reports its exit
// (launch/children.windows.cpp); there are no pidfds and no descriptors to watch.

#include "launch/exit_watcher.hpp"

namespace mproc::launch {

std::error_code exit_watcher::prepare(boost::asio::io_context& /*context*/) noexcept { return {}; }

std::error_code exit_watcher::watch(int /*pid*/, std::function<void()> /*on_exit*/) {
  return std::make_error_code(std::errc::not_supported);
}

std::error_code exit_watcher::watch_descriptor(int /*fd*/, short /*events*/,
                                               std::function<bool()> /*on_ready*/) {
  return std::make_error_code(std::errc::not_supported);
}

}  // namespace mproc::launch
