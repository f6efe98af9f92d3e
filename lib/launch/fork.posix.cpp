// The fork and forkserver methods: both ask a zygote for workers. Under fork the zygote is
// forked from the application when the pool starts (so workers see the application's memory
// as it was then); under forkserver it is spawned (so workers start from a fresh program).
// If a zygote dies, or misses a deadline, the next one is spawned: forking the application
// again could copy locks held by its threads.

#include "channel/channel.hpp"
#include "init_state.hpp"
#include "launch/launcher.hpp"
#include "launch/refusal.hpp"
#include "launch/zygote.posix.hpp"
#include "platform/pipe.hpp"

#include <mproc/errors.hpp>

#include <poll.h>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace mproc::launch {

namespace {

class zygote_launcher final : public launcher {
 public:
  zygote_launcher(start_method method, std::shared_ptr<zygote> first)
      : method_(method), current_(std::move(first)) {
    listen_to(current_);
  }

  start_method method() const noexcept override { return method_; }

  started launch(const channel::segment& seg, const std::string& secret) override {
    std::lock_guard lock(mutex_);
    const zygote::launched l = current_->launch(seg.name(), seg.descriptor(), secret);
    if (!l.unresponsive.empty()) {
      // Workers it forked keep running and are still watched; new ones come from a fresh,
      // spawned zygote.
      std::fprintf(stderr, "mproc: the %s zygote (pid %d) %s; starting a new one\n",
                   std::string(to_string(method_)).c_str(), current_->pid(),
                   l.unresponsive.c_str());
      current_->end();
      if (!initialized()) {
        throw start_error(
            "cannot start worker: the zygote that forks workers " + l.unresponsive +
            ", and a new one can only be spawned once mproc::init(argc, argv) is the first "
            "line of main");
      }
      current_ = zygote::spawn();
      listen_to(current_);
      // The old zygote may have forked a worker for `seg` before it stopped: the new one
      // gets a new segment.
      throw try_again{};
    }
    if (l.error) {
      std::rethrow_exception(refusal_error(
          "cannot start worker: the zygote's fork failed for half a second", l.error));
    }
    owners_[l.pid] = current_;
    return {l.pid, -1};
  }

  platform::exit_status reap(int pid, clock::time_point deadline) override {
    std::shared_ptr<zygote> owner;
    {
      std::lock_guard lock(mutex_);
      const auto it = owners_.find(pid);
      if (it == owners_.end()) return {};
      owner = it->second;
      owners_.erase(it);
    }
    return owner->reap(pid, deadline);
  }

 protected:
  std::error_code watch(const started& s, std::function<void()> on_exit) override {
    if (!watcher_.watch(s.pid, on_exit)) return {};
    // No pidfd (valgrind, seccomp, a kernel before 5.3): the zygote's report tells instead.
    std::shared_ptr<zygote> owner;
    {
      std::lock_guard lock(mutex_);
      owner = owners_.at(s.pid);
    }
    owner->on_report(s.pid, std::move(on_exit));
    return {};
  }

  void release_helpers() noexcept override {
    std::lock_guard lock(mutex_);
    owners_.clear();
    current_.reset();  // ends and reaps the zygote
  }

 private:
  // Reads the zygote's reports on the watching thread, for as long as the zygote lives.
  void listen_to(const std::shared_ptr<zygote>& z) {
    std::error_code ec;
    const int copy = platform::duplicate_above(z->report_descriptor(), 0, ec);
    if (copy >= 0) {
      ec = watcher_.watch_descriptor(copy, POLLIN, [z] { return z->read_report(); });
    }
    if (ec) std::rethrow_exception(refusal_error("cannot start the zygote's listener", ec));
  }

  start_method method_;
  std::mutex mutex_;
  std::shared_ptr<zygote> current_;                // guarded by mutex_
  std::map<int, std::shared_ptr<zygote>> owners_;  // guarded by mutex_
};

}  // namespace

std::unique_ptr<launcher> make_fork_launcher() {
  return std::make_unique<zygote_launcher>(start_method::fork, zygote::fork_from_here());
}

std::unique_ptr<launcher> make_forkserver_launcher() {
  return std::make_unique<zygote_launcher>(start_method::forkserver, zygote::spawn());
}

}  // namespace mproc::launch
