// Worker initializers and per-worker state, worker recycling, callbacks and progress, and the
// thread pool with the process pool's surface.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bdata = boost::unit_test::data;

namespace work {

// A model as an initializer builds it: it holds a mutex, so it can never cross a process.
struct model {
  std::mutex lock;
  std::string name;
  int inits_in_this_process = 0;
  explicit model(std::string n) : name(std::move(n)) {}
};

int g_inits = 0;  // initializer runs in this process

model load_model(std::string name) {
  ++g_inits;
  return model(name + "@" + std::to_string(mproc_test::current_pid()));
}

struct report {
  int pid = 0;
  int inits = 0;
  std::string model_name;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& pid& inits& model_name;
  }
};

report inspect(int /*x*/) {
  model& m = mproc::worker_state<model>();
  std::lock_guard lock(m.lock);
  return {mproc_test::current_pid(), g_inits, m.name};
}

int load_fails(int code) { throw std::runtime_error("no model file #" + std::to_string(code)); }

[[noreturn]] int crash(int /*x*/) { std::abort(); }
int square(int x) { return x * x; }
int worker_pid(int /*x*/) { return mproc_test::current_pid(); }
std::string label(int x) { return "#" + std::to_string(x); }
int ask_for_state(int /*x*/) { return static_cast<int>(mproc::worker_state<double>()); }

// Initializers under which only the first worker to run one starts at once: `marker` is a
// directory that exactly one of them creates.
int first_or_wait(std::string marker, std::string gate) {
  if (std::filesystem::create_directory(marker)) return 0;
  return mproc_test::pass_gate(gate);
}
int first_or_fail(std::string marker) {
  if (std::filesystem::create_directory(marker)) return 0;
  throw std::runtime_error("no model for this worker");
}
int wait_at(std::string gate) { return mproc_test::pass_gate(gate); }
int pid_after(std::string gate) {
  mproc_test::pass_gate(gate);
  return mproc_test::current_pid();
}

// An initializer for two workers: the first to run it returns only once the other runs it too
// (each opens one end of the FIFO `fifo`, which returns once the other end is open).
int meet(std::string marker, std::string fifo) {
  if (std::filesystem::create_directory(marker)) {
    const std::ifstream in(fifo);
  } else {
    const std::ofstream out(fifo);
  }
  return 0;
}

// A path no process uses yet, removed at the end of the test.
struct fresh_path {
  std::string path =
      (std::filesystem::temp_directory_path() /
       ("mproc-marker-" + std::to_string(mproc_test::current_pid()) + "-" + std::to_string(next++)))
          .string();
  fresh_path() = default;
  fresh_path(const fresh_path&) = delete;
  fresh_path& operator=(const fresh_path&) = delete;
  ~fresh_path() { std::filesystem::remove_all(path); }
  static inline int next = 0;
};

// How many worker processes `pool` has: the children of a worker's parent (the zygote, or
// under spawn this process, which has no other child).
std::size_t worker_count(mproc::process_pool& pool) {
  const int pid = pool.submit<worker_pid>(0).get();
  int parent = -1;
  for (const auto& [p, pp] : mproc_test::all_processes()) {
    if (p == pid) parent = pp;
  }
  std::size_t n = 0;
  for (const auto& [p, pp] : mproc_test::all_processes()) n += pp == parent ? 1 : 0;
  return n;
}

}  // namespace work

BOOST_AUTO_TEST_SUITE(workers)

// On demand, so that the second worker starts only when a task waits: the first one is then
// the constructor's for certain (eagerly, the two initializers race for the marker).
BOOST_DATA_TEST_CASE_F(mproc_test::clean_check,
                       a_queued_task_runs_on_a_ready_worker_while_another_still_starts,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc_test::gate held;
  work::fresh_path marker;
  mproc::pool_options o = mproc_test::options(method, 2);
  o.start_on_demand = true;
  o.initializer = mproc::bind<work::first_or_wait>(marker.path, held.token());
  mproc::process_pool pool(o);
  mproc_test::gate busy;
  mproc::future<int> waiting = pool.submit<work::wait_at>(busy.token());
  busy.wait_until_entered();
  // Queued: it starts the second worker, which waits at `held` in its initializer.
  mproc::future<int> queued = pool.submit<work::worker_pid>(0);
  held.wait_until_entered();
  busy.release('y');
  BOOST_TEST(waiting.get() == 'y');
  const int first = queued.get();  // run by the first worker meanwhile
  held.release();
  // Both serve now: a task runs in one while the other one waits in the other.
  mproc_test::gate busy_again;
  mproc::future<int> waiting_again = pool.submit<work::pid_after>(busy_again.token());
  busy_again.wait_until_entered();
  const int other = pool.submit<work::worker_pid>(0).get();
  busy_again.release();
  BOOST_TEST(other != waiting_again.get());
  BOOST_TEST(first > 0);
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{"a FIFO"}))
BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, the_initializers_of_all_workers_run_at_once,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc_test::gate fifo;  // only its FIFO
  work::fresh_path marker;
  mproc::pool_options o = mproc_test::options(method, 2);
  o.initializer = mproc::bind<work::meet>(marker.path, fifo.token());
  o.task_timeout = std::chrono::seconds(30);  // bounds an initializer that waits in vain
  // The first worker's initializer (run by the constructor) returns only once the second's runs.
  mproc::process_pool pool(o);
  BOOST_TEST(pool.submit<work::square>(3).get() == 9);
}

// On demand, so that the failing worker is the second for certain (see above).
BOOST_DATA_TEST_CASE_F(mproc_test::clean_check,
                       a_worker_that_fails_to_start_after_the_first_stops_the_pool,
                       bdata::make(mproc_test::methods_under_test()), method) {
  work::fresh_path marker;
  mproc::pool_options o = mproc_test::options(method, 2);
  o.start_on_demand = true;
  o.initializer = mproc::bind<work::first_or_fail>(marker.path);
  mproc::process_pool pool(o);
  const auto stopped = [](const mproc::start_error& e) {
    const std::string what = e.what();
    return what.find("the pool stopped: its worker 2 of 2 did not start") != std::string::npos &&
           what.find("work::first_or_fail") != std::string::npos &&
           what.find("no model for this worker") != std::string::npos;
  };
  mproc_test::gate busy;
  mproc::future<int> running = pool.submit<work::wait_at>(busy.token());
  busy.wait_until_entered();
  // Queued: only the second worker could take it, and it does not start.
  mproc::future<int> queued = pool.submit<work::square>(3);
  BOOST_CHECK_EXCEPTION(queued.get(), mproc::start_error, stopped);
  BOOST_CHECK_EXCEPTION(pool.submit<work::square>(1), mproc::start_error, stopped);
  busy.release();
  BOOST_TEST(running.get() == 'x');  // what the first worker runs is not lost
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, on_demand_a_worker_starts_when_a_task_waits,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::pool_options o = mproc_test::options(method, 3);
  o.start_on_demand = true;
  mproc::process_pool pool(o);
  std::set<int> pids;
  for (int i = 0; i < 5; ++i) pids.insert(pool.submit<work::worker_pid>(0).get());
  BOOST_TEST(pids.size() == 1U);  // one at a time: the first worker serves them all
  BOOST_TEST(work::worker_count(pool) == 1U);
  mproc_test::gate busy;
  mproc::future<int> waiting = pool.submit<work::wait_at>(busy.token());
  busy.wait_until_entered();
  // This one waits in the queue until a second worker starts for it.
  const int other = pool.submit<work::worker_pid>(0).get();
  busy.release();
  waiting.get();
  BOOST_TEST(pids.count(other) == 0U);
  BOOST_TEST(work::worker_count(pool) >= 2U);
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check,
                       initializer_runs_once_per_worker_and_again_after_a_crash,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::pool_options o = mproc_test::options(method, 2);
  o.initializer = mproc::bind<work::load_model>(std::string("resnet"));
  mproc::process_pool pool(o);
  std::map<int, work::report> seen;
  for (const work::report& r : pool.map<work::inspect>(std::vector<int>(40, 0), 1)) {
    BOOST_TEST(r.inits == 1);  // exactly once in this worker, however many tasks it ran
    BOOST_TEST(r.model_name == "resnet@" + std::to_string(r.pid));  // built in that worker
    seen[r.pid] = r;
  }
  BOOST_TEST(seen.size() <= 2U);
  BOOST_TEST(seen.count(mproc_test::current_pid()) == 0U);
  BOOST_CHECK_THROW(pool.submit<work::crash>(0).get(), mproc::worker_crashed);
  std::set<int> after;
  for (const work::report& r : pool.map<work::inspect>(std::vector<int>(40, 0), 1)) {
    BOOST_TEST(r.inits == 1);
    BOOST_TEST(r.model_name == "resnet@" + std::to_string(r.pid));
    after.insert(r.pid);
  }
  BOOST_TEST(after.size() <= 2U);
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check,
                       a_throwing_initializer_fails_the_start_with_its_message,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::pool_options o = mproc_test::options(method, 2);
  o.initializer = mproc::bind<work::load_fails>(7);
  try {
    mproc::process_pool pool(o);
    BOOST_FAIL("the pool started");
  } catch (const mproc::start_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("work::load_fails") != std::string::npos);
    BOOST_TEST(what.find("std::runtime_error") != std::string::npos);
    BOOST_TEST(what.find("no model file #7") != std::string::npos);
  }
}

BOOST_FIXTURE_TEST_CASE(worker_state_without_an_initializer_says_so, mproc_test::clean_check) {
  mproc::process_pool pool(mproc_test::options(mproc_test::methods_under_test().front(), 1));
  try {
    pool.submit<work::ask_for_state>(0).get();
    BOOST_FAIL("no error");
  } catch (const mproc::remote_error& e) {
    BOOST_TEST(e.type() == "std::logic_error");
    BOOST_TEST(e.message().find("worker_state<double>") != std::string::npos);
    BOOST_TEST(e.message().find("pool_options::initializer") != std::string::npos);
  }
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, max_tasks_per_worker_recycles_without_losing_tasks,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::pool_options o = mproc_test::options(method, 2);
  o.max_tasks_per_worker = 3;
  o.initializer = mproc::bind<work::load_model>(std::string("m"));
  mproc::process_pool pool(o);
  std::vector<mproc::future<work::report>> fs;
  for (int i = 0; i < 100; ++i) fs.push_back(pool.submit<work::inspect>(i));
  std::map<int, int> tasks_per_pid;
  for (auto& f : fs) {
    const work::report r = f.get();  // none lost, none failed
    BOOST_TEST(r.inits == 1);        // every recycled worker ran the initializer again
    ++tasks_per_pid[r.pid];
  }
  for (const auto& [pid, n] : tasks_per_pid) BOOST_TEST(n <= 3, "pid " << pid << " ran " << n);
  // 100 tasks, at most 3 per process, over 2 slots: 34 processes, 35 if the split is uneven.
  BOOST_TEST(tasks_per_pid.size() >= 34U);
  BOOST_TEST(tasks_per_pid.size() <= 35U);
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, done_callbacks_and_map_progress,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::process_pool pool(mproc_test::options(method, 2));
  std::promise<void> first_called;
  std::atomic<int> calls{0};
  mproc::future<int> f = pool.submit<work::square>(6);
  f.add_done_callback([&] {
    ++calls;
    first_called.set_value();
  });
  BOOST_TEST(
      (first_called.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready));
  BOOST_TEST(f.ready());
  BOOST_TEST(f.get() == 36);
  mproc::future<int> g = pool.submit<work::square>(7);
  g.wait();
  const auto here = std::this_thread::get_id();
  std::thread::id ran_in;
  g.add_done_callback([&] {
    ++calls;
    ran_in = std::this_thread::get_id();
  });
  BOOST_TEST(calls.load() == 2);  // already done: it ran at once, here
  BOOST_TEST((ran_in == here));
  BOOST_TEST(g.get() == 49);

  std::vector<std::pair<std::size_t, std::size_t>> reports;
  const auto caller = std::this_thread::get_id();
  bool same_thread = true;
  const std::vector<int> ys =
      pool.map<work::square>(std::vector<int>(25, 3), 4, [&](std::size_t done, std::size_t total) {
        same_thread = same_thread && std::this_thread::get_id() == caller;
        reports.emplace_back(done, total);
      });
  BOOST_TEST(ys == std::vector<int>(25, 9));
  BOOST_TEST(same_thread);
  BOOST_TEST_REQUIRE(reports.size() == 8U);  // start, then 7 chunks (6 of 4 and one of 1)
  BOOST_TEST((reports.front() == std::pair<std::size_t, std::size_t>(0, 25)));
  BOOST_TEST((reports.back() == std::pair<std::size_t, std::size_t>(25, 25)));
  for (std::size_t i = 1; i < reports.size(); ++i) {
    BOOST_TEST(reports[i].first > reports[i - 1].first);
  }
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, thread_pool_and_process_pool_agree,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::process_pool processes(mproc_test::options(method, 2));
  mproc::thread_pool threads(2);
  BOOST_TEST(threads.workers() == 2U);
  std::vector<int> xs(200);
  std::iota(xs.begin(), xs.end(), -100);
  for (const std::size_t chunk : {0, 1, 7, 1000}) {
    BOOST_TEST(processes.map<work::square>(xs, chunk) == threads.map<work::square>(xs, chunk));
    BOOST_TEST(processes.map<work::label>(xs, chunk) == threads.map<work::label>(xs, chunk));
  }
  BOOST_TEST(processes.submit<work::label>(5).get() == threads.submit<work::label>(5).get());
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 30; ++i) fs.push_back(threads.submit<work::square>(i));
  std::set<int> seen;
  for (auto& f : mproc::as_completed(fs)) seen.insert(f.get());
  BOOST_TEST(seen.size() == 30U);
}

BOOST_AUTO_TEST_CASE(thread_pool_takes_any_callable_and_keeps_exceptions_as_they_are) {
  mproc::thread_pool pool(2);
  const int base = 40;
  BOOST_TEST(pool.submit([base](int x) { return base + x; }, 2).get() == 42);
  BOOST_CHECK_THROW(pool.submit([] { return std::stoi("not a number"); }).get(),
                    std::invalid_argument);
  std::vector<int> seen;
  std::mutex m;
  pool.map<work::square>(std::vector<int>{1, 2});
  auto v = pool.submit([&] {
    std::lock_guard lock(m);
    seen.push_back(1);
  });
  v.get();
  BOOST_TEST(seen.size() == 1U);
  pool.shutdown();
  BOOST_CHECK_THROW(pool.submit<work::square>(1), mproc::pool_closed);
}

BOOST_AUTO_TEST_CASE(thread_pool_cancels_what_has_not_started) {
  mproc::thread_pool pool(1);
  std::mutex gate;
  std::unique_lock hold(gate);
  auto blocker = pool.submit([&] { std::lock_guard wait(gate); });
  std::vector<mproc::future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.submit<work::square>(i));
  BOOST_TEST(queued[0].cancel());
  BOOST_CHECK_THROW(queued[0].get(), mproc::cancelled_error);
  hold.unlock();
  blocker.get();
  for (int i = 1; i < 5; ++i) BOOST_TEST(queued[static_cast<std::size_t>(i)].get() == i * i);
}

BOOST_AUTO_TEST_SUITE_END()
