// The fork and forkserver methods: both ask a zygote for workers. Under fork the zygote is
// forked from the application when the pool starts (so workers see the application's memory
// as it was then); under forkserver it is spawned (so workers start from a fresh program).
// If a zygote dies, the next one is spawned: forking the application again could copy locks
// held by its threads.

#include "init_state.hpp"
#include "launch/launcher.hpp"
#include "launch/zygote.posix.hpp"

#include <mproc/errors.hpp>

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
      : method_(method), current_(std::move(first)) {}

  start_method method() const noexcept override { return method_; }

  started launch(const std::shared_ptr<channel::segment>& seg, const std::string& secret) override {
    std::lock_guard lock(mutex_);
    int pid = current_->launch(seg->name(), secret);
    if (pid < 0) {
      // The zygote died (killed, or out of memory). Workers it forked keep running and are
      // still reaped through it; new ones come from a fresh, spawned zygote.
      std::fprintf(stderr, "mproc: the %s zygote ended unexpectedly; starting a new one\n",
                   std::string(to_string(method_)).c_str());
      current_->end();
      if (!initialized()) {
        throw start_error(
            "cannot start worker: the zygote that forks workers died, and a new one can only be "
            "spawned once mproc::init(argc, argv) is the first line of main");
      }
      current_ = zygote::spawn();
      pid = current_->launch(seg->name(), secret);
      if (pid < 0) throw start_error("cannot start worker: the new zygote does not answer");
    }
    owners_[pid] = current_;
    return {pid, -1};
  }

  platform::exit_status reap(int pid) override {
    std::shared_ptr<zygote> owner;
    {
      std::lock_guard lock(mutex_);
      const auto it = owners_.find(pid);
      if (it == owners_.end()) return {};
      owner = it->second;
      owners_.erase(it);
    }
    return owner->reap(pid);
  }

  void stop() noexcept override {
    std::lock_guard lock(mutex_);
    owners_.clear();
    current_.reset();  // ends and reaps the zygote
  }

 private:
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
