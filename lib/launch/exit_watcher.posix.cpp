// Descriptors watched through asio's reactor (epoll): a pidfd is readable once its process has
// ended; a pipe's read end once it has data, its write end reports an error once every read
// end is closed.

#include "launch/exit_watcher.hpp"

#include "platform/process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <poll.h>
#include <unistd.h>

namespace mproc::launch {

namespace {

struct descriptor_watch : std::enable_shared_from_this<descriptor_watch> {
  descriptor_watch(exit_watcher& w, boost::asio::posix::descriptor_base::wait_type t,
                   std::function<bool()> call)
      : watcher(w), descriptor(w.context()), type(t), on_ready(std::move(call)) {}

  // On the context's thread only, like every use of the descriptor after `assign`.
  void arm() {
    descriptor.async_wait(type, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && self->on_ready()) {
        self->arm();
        return;
      }
      // Done, or cancelled at stop (then the callback is dropped uncalled).
      self->watcher.forget(self->id);
      boost::system::error_code ignored;
      self->descriptor.close(ignored);
    });
  }

  exit_watcher& watcher;
  boost::asio::posix::stream_descriptor descriptor;
  boost::asio::posix::descriptor_base::wait_type type;
  std::function<bool()> on_ready;
  std::uint64_t id = 0;
};

}  // namespace

std::error_code exit_watcher::prepare(boost::asio::io_context& context) noexcept {
  // The reactor (an epoll, an eventfd and a timerfd) comes with the first descriptor object:
  // made here, so that no later watch meets a refusal as an exception.
  try {
    const boost::asio::posix::stream_descriptor first(context);
    return {};
  } catch (const boost::system::system_error& e) {
    return {e.code().value(), std::system_category()};
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
}

std::error_code exit_watcher::watch(int pid, std::function<void()> on_exit) {
  if (error_) return error_;
  std::error_code ec;
  const int fd = platform::open_handle(pid, ec);
  if (fd < 0) return ec;
  return watch_descriptor(fd, POLLIN, [call = std::move(on_exit)] {
    call();
    return false;
  });
}

std::error_code exit_watcher::watch_descriptor(int fd, short events,
                                               std::function<bool()> on_ready) {
  if (error_) {
    ::close(fd);
    return error_;
  }
  using base = boost::asio::posix::descriptor_base;
  // A write end is never readable: its error is what it reports (epoll reports it to both).
  const base::wait_type type = (events & POLLIN) != 0 ? base::wait_read : base::wait_error;
  auto w = std::make_shared<descriptor_watch>(*this, type, std::move(on_ready));
  boost::system::error_code ec;
  w->descriptor.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return {ec.value(), std::generic_category()};
  }
  // Closing it at stop cancels the wait; the callback goes with it.
  w->id = on_stop([w] {
    boost::system::error_code ignored;
    w->descriptor.cancel(ignored);
  });
  if (w->id == 0) return std::make_error_code(std::errc::operation_canceled);
  boost::asio::post(context(), [w] { w->arm(); });
  return {};
}

}  // namespace mproc::launch
