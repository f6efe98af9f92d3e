#include "launch/launcher.hpp"

#include "init_state.hpp"
#include "launch/refusal.hpp"
#include "launch/worker_process.hpp"
#include "platform/own_threads.hpp"
#include "platform/pipe.hpp"
#include "platform/process.hpp"
#include "platform/shared_memory.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/errors.hpp>
#include <mproc/init.hpp>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

namespace mproc::launch {

namespace {

// Each ring of a worker's channel holds this much.
constexpr std::size_t ring_capacity = std::size_t{1} << 20;

bool available(start_method m) {
  for (const start_method a : available_start_methods()) {
    if (a == m) return true;
  }
  return false;
}

}  // namespace

launcher::~launcher() = default;

void launcher::start_watching() {
  if (const std::error_code ec = watcher_.error()) {
    std::rethrow_exception(
        refusal_error("cannot start a pool: cannot set up the watching of workers' exits", ec));
  }
  if (const std::error_code ec = watcher_.start()) {
    std::rethrow_exception(refusal_error(
        "cannot start a pool: cannot start its thread that watches workers' exits", ec));
  }
}

std::unique_ptr<worker_process> launcher::start_worker(std::function<void()> on_exit) {
  std::shared_ptr<channel::segment> seg;
  std::string secret;
  started s;
  for (int attempt = 1;; ++attempt) {
    std::error_code ec;
    seg = channel::segment::create(ring_capacity, ec);
    if (ec) {
      const std::uint64_t need = 2 * ring_capacity + 4096;
      std::string action = "cannot start worker: cannot create its shared memory (" +
                           std::to_string(need >> 20) + " MiB)";
      std::uint64_t total = 0;
      std::uint64_t free = 0;
      if (ec == std::errc::no_space_on_device && !channel::segment::anonymous() &&
          platform::shared_memory_room(total, free)) {
        // How many workers /dev/shm holds: a container's small default (64 MiB in Docker) is
        // the usual cause.
        action += ": /dev/shm is " + std::to_string(total >> 20) + " MiB with " +
                  std::to_string(free >> 20) + " MiB free, room for " +
                  std::to_string(total / need) + " workers' channels in all";
      }
      std::rethrow_exception(refusal_error(action, ec));
    }
    // The worker gets the secret through a channel only it and this process hold (its
    // lifeline, or the zygote's request socket): a process that merely opened the segment
    // cannot pass for it.
    if ((ec = platform::random_hex(worker::secret_size / 2, secret))) {
      std::rethrow_exception(refusal_error("cannot start worker: no random secret", ec));
    }
    try {
      s = launch(*seg, secret);
      break;
    } catch (const try_again&) {
      if (attempt == 2) {
        throw start_error("cannot start worker: its helper process did not answer, twice");
      }
    }
  }
  auto gone = std::make_shared<std::atomic<bool>>(false);
  auto proc = std::make_unique<worker_process>(*this, seg, std::move(secret), s, gone);
  // The death of a worker wakes whoever reads its ring, and then the pool.
  const std::error_code ec = watch(s, [gone, seg, call = std::move(on_exit)] {
    if (gone->exchange(true)) return;
    seg->mark_worker_gone();
    call();
  });
  if (ec) {
    proc->end();
    std::rethrow_exception(refusal_error(
        "cannot start worker: cannot watch its process (pid " + std::to_string(s.pid) + ")", ec));
  }
  return proc;
}

void launcher::stop() noexcept {
  watcher_.stop();
  release_helpers();
}

std::error_code launcher::watch(const started& s, std::function<void()> on_exit) {
  return watcher_.watch(s.pid, std::move(on_exit));
}

int launcher::open_handle(int pid) noexcept { return platform::open_handle(pid); }

void launcher::signal(int pid, int handle, bool terminate, bool gone) noexcept {
  if (handle >= 0) {
    if (terminate) {
      platform::terminate_handle(handle);
    } else {
      platform::kill_handle(handle);
    }
  } else if (!gone) {
    // No handle names it (no pidfd: valgrind, an old kernel): its pid does, until it is
    // reaped; a zygote's worker is reaped by its zygote only after it has ended, which
    // `gone` tells.
    platform::kill_process(pid);
  }
}

void launcher::release(int handle, int lifeline) noexcept {
  if (lifeline >= 0) {
    platform::unregister_lifeline(lifeline);
    platform::close_fd(lifeline);
  }
  platform::close_fd(handle);
}

namespace {

std::mutex& factory_mutex() {
  static std::mutex m;
  return m;
}

std::function<std::unique_ptr<launcher>(start_method)>& factory() {
  static std::function<std::unique_ptr<launcher>(start_method)> f;  // guarded by factory_mutex
  return f;
}

}  // namespace

void replace_launchers_for_tests(std::function<std::unique_ptr<launcher>(start_method)> f) {
  std::lock_guard lock(factory_mutex());
  factory() = std::move(f);
}

std::thread start_thread(std::function<void()> body, const std::string& role) {
  std::error_code ec;
  std::thread t = platform::start_own_thread(std::move(body), ec);
  if (ec) {
    std::rethrow_exception(
        refusal_error("cannot start a pool: cannot start its thread that " + role, ec));
  }
  return t;
}

bool unclaimed_process(const std::vector<std::string>& args);

bool unclaimed_spawned_worker() {
  return !worker::active() && unclaimed_process(platform::command_line());
}

start_method resolve(start_method requested) {
  if (requested == start_method::automatic) {
    if (const char* env = std::getenv("MPROC_START_METHOD"); env != nullptr && *env != '\0') {
      try {
        requested = parse_start_method(env);
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("MPROC_START_METHOD: ") + e.what());
      }
    }
  }
  if (requested != start_method::automatic) return requested;
  if (!available(start_method::fork)) return start_method::spawn;
  // Forking a process that has other threads copies their locks in whatever state they are:
  // a forkserver forks from a clean process instead.
  return platform::foreign_threads() == 1 ? start_method::fork : start_method::forkserver;
}

void check_startable(start_method method, const std::string& what) {
  if (unclaimed_spawned_worker()) {
    // A spawned worker whose main did not hand control to mproc::init reached this point:
    // starting processes from here would re-run the program again and again.
    throw start_error("cannot start " + what +
                      " inside a spawned worker: this program was started as an mproc worker, "
                      "but main did not call mproc::init(argc, argv) first. Add it as the "
                      "first line of main.");
  }
  if ((method == start_method::spawn || method == start_method::forkserver) && !initialized()) {
    throw start_error("cannot start " + what + " with the " + std::string(to_string(method)) +
                      " method: mproc::init(argc, argv) was not called. Add it as the first "
                      "line of main, so that spawned processes enter mproc's loop instead of "
                      "running the program.");
  }
}

std::unique_ptr<launcher> make_launcher(start_method method, bool allow_fork_with_threads) {
  // A segment's name exists only while its worker starts; one left by a process killed in that
  // moment is removed by the next pool on the machine.
  platform::remove_orphaned_segments();
  {
    std::lock_guard lock(factory_mutex());
    if (factory()) return factory()(method);
  }
  if (!available(method)) {
    throw start_error("cannot start workers with '" + std::string(to_string(method)) +
                      "': this platform does not have it; use spawn");
  }
  switch (method) {
    case start_method::fork:
      if (const std::size_t threads = platform::foreign_threads();
          threads > 1 && !allow_fork_with_threads) {
        throw start_error(
            "cannot start workers with 'fork': this process has " + std::to_string(threads) +
            " threads that mproc did not start (pools' own threads are not counted), and a "
            "fork copies any lock another thread holds, locked for good (the "
            "classic hang). Use start_method::forkserver or spawn, or create the pool before "
            "starting threads, or accept the risk with pool_options::allow_fork_with_threads");
      }
      return make_fork_launcher();
    case start_method::forkserver:
      return make_forkserver_launcher();
    case start_method::spawn:
      return make_spawn_launcher();
    case start_method::automatic:
      break;
  }
  throw start_error("cannot start workers: no start method resolved");
}

bool unclaimed_process(const std::vector<std::string>& args) {
  return args.size() >= 2 &&
         (args[1].rfind(worker_argument, 0) == 0 || args[1].rfind(zygote_argument, 0) == 0);
}

}  // namespace mproc::launch
