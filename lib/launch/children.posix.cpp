#include "launch/children.hpp"

#include "launch/boost_process.hpp"
#include "launch/refusal.hpp"

#include <boost/asio/post.hpp>
#include <boost/process/v2/process.hpp>  // after the prelude above

#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

namespace mproc::launch {

namespace {

// A Boost.Process v2 launcher (any callable that returns a `basic_process`) that starts the
// child with posix_spawn: v2's own POSIX launchers run asio's notify_fork between fork and
// exec, which allocates and takes asio's locks, and so hangs under ASan or dies when another
// thread uses the same context at that moment.
struct posix_spawn_launcher {
  const std::string& name;  // the child's argv[0]
  const std::vector<std::pair<int, int>>& inherit;
  int pid = -1;
  std::error_code no_pidfd;  // the child runs, but no pidfd names it: waited for by hand

  template <class Executor>
  bp2::basic_process<Executor> operator()(Executor ex, std::error_code& ec,
                                          const std::filesystem::path& exe,
                                          const std::vector<std::string>& args) {
    std::vector<std::string> argv{name};
    argv.insert(argv.end(), args.begin(), args.end());
    ec = platform::spawn_process(exe.string(), argv, inherit, pid);
    if (ec) return bp2::basic_process<Executor>(ex);
    // Never basic_process(ex, pid): it does not check pidfd_open, and a failed registration
    // leaves asio's reactor holding descriptor -1 for good.
    const int pidfd = platform::open_handle(pid, no_pidfd);
    if (pidfd < 0) return bp2::basic_process<Executor>(ex);
    try {
      return bp2::basic_process<Executor>(ex, pid, pidfd);
    } catch (const boost::system::system_error& e) {  // epoll refused it
      ::close(pidfd);
      no_pidfd = {e.code().value(), std::generic_category()};
      return bp2::basic_process<Executor>(ex);
    }
  }
};

}  // namespace

struct children::impl {
  struct child {
    std::unique_ptr<owned_process> process;       // null if no pidfd names it
    std::error_code no_handle;                    // why there is no process object
    std::optional<platform::exit_status> status;  // set once the process object reaped it
  };

  explicit impl(exit_watcher& w) : watcher(w) {}

  exit_watcher& watcher;
  std::mutex mutex;
  std::condition_variable reaped_cv;  // notified with mutex held
  std::map<int, child> table;         // guarded by mutex
};

children::children(exit_watcher& watcher) : impl_(std::make_unique<impl>(watcher)) {}

children::~children() {
  std::lock_guard lock(impl_->mutex);
  for (auto& [pid, c] : impl_->table) {
    if (c.process == nullptr) {
      platform::kill_process(pid);
      platform::reap(pid);
    }
    // A process object's destructor kills and reaps a child it still owns.
  }
}

std::error_code children::start(const std::string& exe, const std::string& name,
                                const std::vector<std::string>& args,
                                const std::vector<std::pair<int, int>>& inherit, int& pid,
                                int& tries) {
  if (const std::error_code ec = impl_->watcher.error()) return ec;
  return retry_while_busy(
      [&]() -> std::error_code {
        posix_spawn_launcher launch{name, inherit, -1, {}};
        std::error_code ec;
        owned_process p = launch(impl_->watcher.context().get_executor(), ec, exe, args);
        if (ec) return ec;
        pid = launch.pid;
        std::lock_guard lock(impl_->mutex);
        impl::child& c = impl_->table[pid];
        if (!launch.no_pidfd) c.process = std::make_unique<owned_process>(std::move(p));
        c.no_handle = launch.no_pidfd;
        return {};
      },
      &tries);
}

std::error_code children::watch(int pid, std::function<void()> on_exit) {
  owned_process* p = nullptr;
  {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->table.find(pid);
    if (it == impl_->table.end()) return std::make_error_code(std::errc::no_such_process);
    if (it->second.process == nullptr) return it->second.no_handle;
    p = it->second.process.get();  // stays until `reap` has seen its status
  }
  // Waits are initiated on the watcher's thread: an I/O object is not for two threads at once.
  boost::asio::post(impl_->watcher.context(), [this, p, pid, call = std::move(on_exit)] {
    p->async_wait([this, p, pid, call](bp2::error_code ec, int) {
      {
        std::lock_guard lock(impl_->mutex);
        // The native status tells a signal from an exit code (exit_code() does not); an error
        // (reaped elsewhere: SIGCHLD ignored) leaves it unknown.
        impl_->table.at(pid).status =
            ec ? platform::exit_status{} : platform::exit_status_of(p->native_exit_code());
        // Reaped: its pid may be reused, so nothing may signal or probe it any more.
        p->detach();
      }
      impl_->reaped_cv.notify_all();
      call();
    });
  });
  return {};
}

int children::open_handle(int pid) noexcept { return platform::open_handle(pid); }

platform::exit_status children::reap(int pid, clock::time_point deadline) {
  std::unique_lock lock(impl_->mutex);
  const auto it = impl_->table.find(pid);
  if (it == impl_->table.end()) return {};
  if (it->second.process == nullptr) {
    // Nothing else reaps it; killed, it ends at once.
    impl_->table.erase(it);
    lock.unlock();
    return platform::reap(pid);
  }
  if (!impl_->reaped_cv.wait_until(lock, deadline,
                                   [&] { return impl_->table.at(pid).status.has_value(); })) {
    return {};  // its wait still runs: the entry stays until it completes or we are destroyed
  }
  const platform::exit_status st = *impl_->table.at(pid).status;
  impl_->table.erase(pid);
  return st;
}

}  // namespace mproc::launch
