// The engine with fake workers: behind the launcher seam, each worker is a thread of this
// process that serves a real channel segment with the real protocol and fails on cue. So the
// engine's scheduling and failure handling are tested without processes: every start-up and
// mid-run failure ends in its documented error within a bound, and nothing is left behind.

#include "support/support.hpp"

#include "channel/channel.hpp"
#include "launch/launcher.hpp"
#include "platform/pipe.hpp"
#include "registry.hpp"
#include "worker/worker_loop.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

int twice(int x) { return 2 * x; }

int load_state() { return 1; }

// What a fake worker does wrong, and when.
enum class fault {
  none,
  refuse_launch,      // its launch throws start_error
  refuse_watch,       // its exit cannot be watched
  silent,             // never sends its first message
  wrong_secret,       // its first message carries another secret
  wrong_digest,       // it runs another set of tasks
  wrong_build,        // it runs another build of the program
  unexpected_first,   // its first message is a result
  gone_before_hello,  // ends before its first message
  gone_on_task,       // ends when its `at`-th task arrives, without answering
  gone_after_answer,  // ends right after answering its `at`-th task
  wrong_id,           // answers its `at`-th task under another task's id
};

struct plan {
  fault what = fault::none;
  int at = 1;
  mproc::platform::exit_status death{3, std::nullopt};  // how it ends by itself
};

// A launcher whose workers are threads. `plans(i)` says what the i-th worker started does.
class fake_launcher final : public mproc::launch::launcher {
 public:
  explicit fake_launcher(std::function<plan(int)> plans) : plans_(std::move(plans)) {}
  ~fake_launcher() override {
    std::lock_guard lock(mutex_);
    BOOST_TEST(workers_.empty(), "a fake worker was never reaped");
    for (auto& [pid, w] : workers_) {
      w->killed = true;
      w->thread.join();
    }
  }

  mproc::start_method method() const noexcept override { return mproc::start_method::forkserver; }

  started launch(const mproc::channel::segment& seg, const std::string& secret) override {
    std::lock_guard lock(mutex_);
    const plan p = plans_(started_++);
    ended_cv_.notify_all();
    if (p.what == fault::refuse_launch) throw mproc::start_error("fake: launch refused");
    auto w = std::make_unique<worker>();
    w->p = p;
    std::error_code ec;  // (Boost.Test is not for driver threads: a start error tells instead)
    // By name, or through a copy of its descriptor, as a worker that inherited it.
    const int copy =
        seg.descriptor() >= 0 ? mproc::platform::duplicate_above(seg.descriptor(), 0, ec) : -1;
    w->seg = mproc::channel::segment::open(
        copy >= 0 ? mproc::channel::segment::descriptor_address(copy) : seg.name(), ec);
    if (ec) throw mproc::start_error("fake: cannot open the segment: " + ec.message());
    worker* raw = w.get();
    const int pid = next_pid_++;
    w->thread = std::thread([this, raw, secret] {
      serve(*raw, secret);
      std::lock_guard ended_lock(mutex_);
      ++ended_;
      ended_cv_.notify_all();
    });
    workers_[pid] = std::move(w);
    return {pid, -1};
  }

  mproc::platform::exit_status reap(int pid,
                                    mproc::launch::clock::time_point /*deadline*/) override {
    std::unique_ptr<worker> w;
    {
      std::lock_guard lock(mutex_);
      const auto it = workers_.find(pid);
      if (it == workers_.end()) return {};
      w = std::move(it->second);
      workers_.erase(it);
    }
    w->killed = true;
    w->thread.join();
    return w->status;
  }

  int open_handle(int pid) noexcept override { return pid; }

  void signal(int pid, int /*handle*/, bool /*terminate*/, bool /*gone*/) noexcept override {
    std::lock_guard lock(mutex_);
    if (const auto it = workers_.find(pid); it != workers_.end()) it->second->killed = true;
  }

  void release(int /*handle*/, int /*lifeline*/) noexcept override {}

  /// Waits (a minute at most) until `n` fake workers have ended and their ends were reported.
  bool wait_until_ended(int n) {
    std::unique_lock lock(mutex_);
    return ended_cv_.wait_for(lock, std::chrono::minutes(1), [&] { return ended_ >= n; });
  }

  /// Waits (a minute at most) until `n` fake workers were asked for.
  bool wait_until_launched(int n) {
    std::unique_lock lock(mutex_);
    return ended_cv_.wait_for(lock, std::chrono::minutes(1), [&] { return started_ >= n; });
  }

  /// Returns how many fake workers were launched.
  int launched() const {
    std::lock_guard lock(mutex_);
    return started_;
  }

 protected:
  std::error_code watch(const started& s, std::function<void()> on_exit) override {
    std::unique_lock lock(mutex_);
    worker& w = *workers_.at(s.pid);
    if (w.p.what == fault::refuse_watch) return std::make_error_code(std::errc::not_supported);
    std::lock_guard exit_lock(w.exit_mutex);
    if (w.ended) {
      lock.unlock();
      on_exit();
    } else {
      w.on_exit = std::move(on_exit);
    }
    return {};
  }

 private:
  struct worker {
    plan p;
    std::shared_ptr<mproc::channel::segment> seg;
    std::thread thread;
    std::atomic<bool> killed{false};
    mproc::platform::exit_status status;
    std::mutex exit_mutex;
    bool ended = false;             // guarded by exit_mutex
    std::function<void()> on_exit;  // guarded by exit_mutex
  };

  // Ends the fake worker: how it ended, then the exit as the system would report it.
  static void end(worker& w, mproc::platform::exit_status st) {
    w.status = st;
    std::function<void()> call;
    {
      std::lock_guard lock(w.exit_mutex);
      w.ended = true;
      call.swap(w.on_exit);
    }
    if (call) call();
  }

  static mproc::platform::exit_status killed_status() { return {std::nullopt, 9}; }

  // Receives the next message, or returns false once the worker is killed.
  static bool next(worker& w, mproc::channel::message_header& h, std::vector<char>& payload) {
    mproc::channel::endpoint ep = w.seg->worker_endpoint();
    while (!w.killed) {
      // A short deadline for the start of a message: the fake has no signal to end it, so it
      // looks for its kill. None for the rest, as in a real worker: a receive that timed out
      // in the middle of a message would leave the next one to start inside it.
      const auto s =
          ep.in.wait_readable(std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
      if (s == mproc::channel::io_status::timed_out) continue;
      return s == mproc::channel::io_status::ok &&
             ep.receive(h, payload) == mproc::channel::io_status::ok;
    }
    return false;
  }

  static void serve(worker& w, const std::string& secret) {
    namespace ch = mproc::channel;
    const fault f = w.p.what;
    if (f == fault::gone_before_hello) return end(w, w.p.death);
    if (f == fault::silent) {
      while (!w.killed) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return end(w, killed_status());
    }
    ch::endpoint ep = w.seg->worker_endpoint();
    ch::message_header hello;
    hello.kind = f == fault::unexpected_first ? ch::message_kind::result : ch::message_kind::hello;
    hello.key = mproc::registry::digest() + (f == fault::wrong_digest ? 1 : 0);
    const std::string proof =
        (f == fault::wrong_secret ? std::string(secret.size(), 'x') : secret) +
        (f == fault::wrong_build ? std::string("0123456789abcdef0123")
                                 : mproc::platform::build_identity());
    hello.size = proof.size();
    (void)ep.send(hello, proof.data());
    ch::message_header h;
    std::vector<char> payload;
    std::vector<char> out;
    int tasks = 0;
    while (next(w, h, payload)) {
      if (h.kind == ch::message_kind::shutdown) return end(w, {0, std::nullopt});
      ++tasks;
      if (f == fault::gone_on_task && tasks == w.p.at) return end(w, w.p.death);
      ch::message_header reply = mproc::worker::answer(h, payload.data(), payload.size(), out);
      if (f == fault::wrong_id && tasks == w.p.at) reply.id += 1000;
      (void)ep.send(reply, out.data());
      if (f == fault::gone_after_answer && tasks == w.p.at) return end(w, w.p.death);
    }
    end(w, killed_status());
  }

  std::function<plan(int)> plans_;
  mutable std::mutex mutex_;
  int started_ = 0;                                 // guarded by mutex_
  int ended_ = 0;                                   // guarded by mutex_
  std::condition_variable ended_cv_;                // a worker was asked for or has ended
  int next_pid_ = 900000;                           // guarded by mutex_
  std::map<int, std::unique_ptr<worker>> workers_;  // guarded by mutex_
};

// Installs a fake launcher for the pools a test starts; checks at the end that nothing is left.
struct fakes {
  explicit fakes(std::function<plan(int)> plans) {
    mproc::launch::replace_launchers_for_tests([this, plans](mproc::start_method) {
      auto l = std::make_unique<fake_launcher>(plans);
      last = l.get();
      return l;
    });
  }
  ~fakes() {
    mproc::launch::replace_launchers_for_tests({});
    BOOST_TEST(mproc_test::leftover_segments().empty());
  }
  fakes(const fakes&) = delete;
  fakes& operator=(const fakes&) = delete;

  fake_launcher* last = nullptr;  // valid while its pool lives
};

// Every worker but the `index`-th does nothing wrong.
std::function<plan(int)> only(int index, plan p) {
  return [index, p](int i) { return i == index ? p : plan{}; };
}

mproc::pool_options options(std::size_t workers) {
  mproc::pool_options o;
  o.workers = workers;
  o.start = mproc::start_method::forkserver;
  o.start_timeout = std::chrono::milliseconds(300);
  return o;
}

bool says(const std::exception& e, const std::string& part) {
  return std::string(e.what()).find(part) != std::string::npos;
}

// Checks that a worker that goes wrong as `p` says fails the pool's start with a start_error
// that says `part` when it is the first worker, and when it is another (which starts while the
// pool already serves), stops the pool: every task either ran or failed with that error, and
// later submits throw it. Within a bound, and nothing is left (see `fakes`).
void check_start_fails(plan p, const std::string& part, const mproc::pool_options& o = options(2)) {
  const auto start = std::chrono::steady_clock::now();
  {
    fakes f(only(0, p));
    try {
      mproc::process_pool pool(o);
      BOOST_ERROR("the pool started");
    } catch (const mproc::start_error& e) {
      BOOST_TEST(says(e, part), e.what());
    }
  }
  {
    fakes f(only(1, p));
    mproc::process_pool pool(o);
    const auto stopped = [&](const mproc::start_error& e) {
      return says(e, "its worker 2 of 2 did not start: ") && says(e, part);
    };
    std::vector<mproc::future<int>> results;
    try {
      for (int i = 0; i < 20; ++i) results.push_back(pool.submit<twice>(i));
    } catch (const mproc::start_error& e) {
      BOOST_TEST(stopped(e), e.what());  // the pool had stopped by then
    }
    for (std::size_t i = 0; i < results.size(); ++i) {
      try {
        BOOST_TEST(results[i].get() == 2 * static_cast<int>(i));
      } catch (const mproc::start_error& e) {
        BOOST_TEST(stopped(e), e.what());
      }
    }
    // Once asked for, the second worker's start ends (in failure) before shutdown returns.
    BOOST_TEST_REQUIRE(f.last->wait_until_launched(2));
    pool.shutdown();
    BOOST_CHECK_EXCEPTION(pool.submit<twice>(1), mproc::start_error, stopped);
  }
  BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(10)));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine_with_fake_workers)

BOOST_AUTO_TEST_CASE(fake_workers_run_tasks) {
  fakes f([](int) { return plan{}; });
  mproc::process_pool pool(options(2));
  std::vector<mproc::future<int>> results;
  for (int i = 0; i < 50; ++i) results.push_back(pool.submit<twice>(i));
  for (int i = 0; i < 50; ++i) BOOST_TEST(results[static_cast<std::size_t>(i)].get() == 2 * i);
  // The second one starts while the first serves (it may have taken none of these).
  BOOST_TEST(f.last->wait_until_launched(2));
  pool.shutdown();
  BOOST_TEST(f.last->launched() == 2);
}

BOOST_AUTO_TEST_CASE(a_launch_that_fails_fails_the_start_and_ends_the_others) {
  check_start_fails({fault::refuse_launch}, "fake: launch refused");
}

BOOST_AUTO_TEST_CASE(an_exit_that_cannot_be_watched_fails_the_start) {
  check_start_fails({fault::refuse_watch}, "cannot watch its process");
}

BOOST_AUTO_TEST_CASE(a_silent_worker_fails_the_start_after_the_start_timeout) {
  check_start_fails({fault::silent}, "did not reach the worker loop within 300 ms");
}

BOOST_AUTO_TEST_CASE(a_wrong_secret_fails_the_start) {
  check_start_fails({fault::wrong_secret}, "does not carry the secret");
}

BOOST_AUTO_TEST_CASE(another_build_fails_the_start_saying_the_file_was_replaced) {
  check_start_fails({fault::wrong_build}, "runs another build of the program");
}

BOOST_AUTO_TEST_CASE(a_wrong_registry_digest_fails_the_start) {
  check_start_fails({fault::wrong_digest}, "runs a different set of tasks");
}

BOOST_AUTO_TEST_CASE(an_unexpected_first_message_fails_the_start) {
  check_start_fails({fault::unexpected_first}, "unexpected first message");
}

BOOST_AUTO_TEST_CASE(a_worker_gone_before_its_hello_fails_the_start_saying_how_it_ended) {
  check_start_fails({fault::gone_before_hello, 1, {7, std::nullopt}},
                    "it exited with code 7 before reaching the worker loop");
}

BOOST_AUTO_TEST_CASE(a_worker_gone_in_its_initializer_fails_the_start_naming_it) {
  mproc::pool_options o = options(2);
  o.initializer = mproc::bind<load_state>();
  check_start_fails({fault::gone_on_task, 1, {4, std::nullopt}},
                    "load_state' failed: its worker exited with code 4", o);
}

BOOST_AUTO_TEST_CASE(a_worker_gone_while_running_fails_only_its_task) {
  fakes f(only(0, {fault::gone_on_task, 3, {5, std::nullopt}}));
  mproc::process_pool pool(options(1));
  std::vector<mproc::future<int>> results;
  for (int i = 0; i < 6; ++i) results.push_back(pool.submit<twice>(i));
  for (int i = 0; i < 6; ++i) {
    if (i == 2) {
      BOOST_CHECK_EXCEPTION(
          results[2].get(), mproc::worker_crashed, [](const mproc::worker_crashed& e) {
            return e.exit_code() == 5 &&
                   std::string(e.what()).find("exited with code 5") != std::string::npos;
          });
    } else {
      BOOST_TEST(results[static_cast<std::size_t>(i)].get() == 2 * i);
    }
  }
  BOOST_TEST(f.last->launched() == 2);  // the worker was replaced
}

BOOST_AUTO_TEST_CASE(a_worker_gone_while_idle_is_replaced_and_loses_nothing) {
  fakes f(only(0, {fault::gone_after_answer, 1}));
  mproc::process_pool pool(options(1));
  BOOST_TEST(pool.submit<twice>(1).get() == 2);
  // Once its end is reported, the next task goes to a replacement. (A task sent before that
  // would fail with worker_crashed, as it does with a real process.)
  BOOST_TEST_REQUIRE(f.last->wait_until_ended(1));
  BOOST_TEST(pool.submit<twice>(2).get() == 4);
  BOOST_TEST(pool.submit<twice>(3).get() == 6);
  BOOST_TEST(f.last->launched() == 2);
}

BOOST_AUTO_TEST_CASE(an_answer_to_another_task_is_a_serialization_error_and_a_new_worker) {
  fakes f(only(0, {fault::wrong_id, 2}));
  mproc::process_pool pool(options(1));
  BOOST_TEST(pool.submit<twice>(1).get() == 2);
  BOOST_CHECK_EXCEPTION(pool.submit<twice>(2).get(), mproc::serialization_error,
                        [](const mproc::serialization_error& e) {
                          return std::string(e.what()).find("answered another task") !=
                                 std::string::npos;
                        });
  BOOST_TEST(pool.submit<twice>(3).get() == 6);
  BOOST_TEST(f.last->launched() == 2);
}

BOOST_AUTO_TEST_CASE(a_replacement_that_cannot_start_fails_the_tasks_that_need_it) {
  // Worker 0 ends on its first task; every replacement is refused.
  fakes f([](int i) {
    if (i == 0) return plan{fault::gone_on_task, 1};
    return plan{fault::refuse_launch};
  });
  mproc::process_pool pool(options(1));
  BOOST_CHECK_THROW(pool.submit<twice>(1).get(), mproc::worker_crashed);
  BOOST_CHECK_EXCEPTION(
      pool.submit<twice>(2).get(), mproc::start_error, [](const mproc::start_error& e) {
        return std::string(e.what()).find("fake: launch refused") != std::string::npos;
      });
}

BOOST_AUTO_TEST_SUITE_END()
