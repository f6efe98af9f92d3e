// The process pool under every start method this platform has: results, order, volume, large
// data, errors, cancellation, shutdown, and that nothing is left behind.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bdata = boost::unit_test::data;
using mproc_test::clean_check;
using mproc_test::options;

namespace tasks {

int square(int x) { return x * x; }
bool is_even(int x) { return x % 2 == 0; }
int add(int a, int b) { return a + b; }
int worker_pid() { return mproc_test::current_pid(); }
std::vector<char> echo_bytes(std::vector<char> bytes) { return bytes; }
std::string greet(const std::string& name) { return "hello " + name; }
// Large results of every shape: one block of 1, 4 and 8-byte elements, and values that are not
// one block (the codec writes them through an archive, or as a count and several blocks).
std::string text_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + n) % 26);
  return s;
}
std::vector<int> ints_of(std::size_t n) {
  std::vector<int> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<int>(i * 2654435761U + n);
  return v;
}
std::vector<double> doubles_of(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<double>(i) * 0.5 + static_cast<double>(n);
  return v;
}
std::vector<std::string> texts_of(std::size_t n) { return {text_of(n), text_of(n / 2 + 1)}; }
std::pair<std::vector<int>, std::string> pair_of(std::size_t n) { return {ints_of(n), text_of(n)}; }
void do_nothing(int /*x*/) {}
// A lock that the test process holds in another thread while a pool starts.
std::mutex held_elsewhere;
int take_the_lock(int x) {
  std::lock_guard lock(held_elsewhere);  // would hang for ever in a fork copied with it held
  return x + 1;
}

// Set by a test before it starts a pool: a forked worker sees it as it was at that moment.
int g_marker = 0;
int read_marker(int /*x*/) { return g_marker; }

double sum_and_double(mproc::shared_array<double> a, std::size_t from, std::size_t to) {
  double sum = 0;
  for (std::size_t i = from; i < to; ++i) {
    sum += a[i];
    a[i] *= 2;
  }
  return sum;
}

struct math {
  static long cube(long x) { return x * x * x; }
};

struct custom_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
int throw_custom(int x) { throw custom_error("custom failure " + std::to_string(x)); }
int fail_on_negative(int x) {
  if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
  return x;
}
[[noreturn]] int abort_worker(int /*x*/) { std::abort(); }

// Blocks at the test's gate until the test releases it, then returns the byte it gave.
int wait_at_gate(std::string token) { return mproc_test::pass_gate(token); }

}  // namespace tasks

namespace {

const std::vector<mproc::start_method> methods = mproc_test::methods_under_test();

// Checks `holds()` until it is true or 20 s have passed (the machine may be slow); returns
// whether it came true. For states of other processes, which no event of this one announces.
template <class Condition>
bool comes_true(Condition holds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!holds()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(pool)

BOOST_DATA_TEST_CASE_F(clean_check, submit_returns_the_result_from_another_process,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  BOOST_TEST(pool.workers() == 2U);
  BOOST_TEST(pool.start_method() == method);
  mproc::future<int> f = pool.submit<tasks::square>(7);
  BOOST_TEST(f.valid());
  BOOST_TEST(f.get() == 49);
  BOOST_TEST(!f.valid());
  BOOST_TEST(pool.submit<tasks::add>(2, 40).get() == 42);
  BOOST_TEST(pool.submit<tasks::greet>("mproc").get() == "hello mproc");
  const int pid = pool.submit<tasks::worker_pid>().get();
  BOOST_TEST(pid != mproc_test::current_pid());
  mproc::future<void> nothing = pool.submit<tasks::do_nothing>(1);
  nothing.wait();
  BOOST_TEST(nothing.ready());
  nothing.get();
  BOOST_TEST(pool.submit<&tasks::math::cube>(3L).get() == 27L);
}

BOOST_DATA_TEST_CASE_F(clean_check, map_keeps_input_order_for_every_chunksize,
                       bdata::make(methods) * bdata::make({0, 1, 7, 1000}), method, chunksize) {
  mproc::process_pool pool(options(method));
  std::vector<int> xs(100);
  std::iota(xs.begin(), xs.end(), -50);
  const std::vector<int> ys = pool.map<tasks::square>(xs, static_cast<std::size_t>(chunksize));
  BOOST_TEST_REQUIRE(ys.size() == xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) BOOST_TEST(ys[i] == xs[i] * xs[i]);
  BOOST_TEST(
      pool.map<tasks::square>(std::vector<int>{}, static_cast<std::size_t>(chunksize)).empty());
  pool.map<tasks::do_nothing>(xs, static_cast<std::size_t>(chunksize));
  // bool results gather into std::vector<bool>, whose elements are bits.
  const std::vector<bool> even = pool.map<tasks::is_even>(xs, static_cast<std::size_t>(chunksize));
  BOOST_TEST_REQUIRE(even.size() == xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) BOOST_TEST(even[i] == (xs[i] % 2 == 0));
  std::size_t n = 0;
  for (const bool e : pool.imap<tasks::is_even>(xs, static_cast<std::size_t>(chunksize))) {
    BOOST_TEST(e == (xs[n++] % 2 == 0));
  }
  BOOST_TEST(n == xs.size());
}

BOOST_DATA_TEST_CASE_F(clean_check, ten_thousand_tasks_all_complete, bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  std::vector<mproc::future<int>> fs;
  fs.reserve(10000);
  for (int i = 0; i < 10000; ++i) fs.push_back(pool.submit<tasks::square>(i % 1000));
  long long sum = 0;
  long long expected = 0;
  for (int i = 0; i < 10000; ++i) {
    sum += fs[static_cast<std::size_t>(i)].get();
    expected += static_cast<long long>(i % 1000) * (i % 1000);
  }
  BOOST_TEST(sum == expected);
}

BOOST_DATA_TEST_CASE_F(clean_check, large_arguments_and_results_cross_intact, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method));
  std::vector<char> big(64U << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) ^ (i >> 13));
  const std::vector<char> back = pool.submit<tasks::echo_bytes>(big).get();
  BOOST_TEST(back.size() == big.size());
  BOOST_TEST((back == big));
  // Buffers of large messages are reused: a shorter message that follows carries no old bytes.
  std::vector<char> shorter(big.size() / 2 + 3, 's');
  const std::vector<char> back2 = pool.submit<tasks::echo_bytes>(shorter).get();
  BOOST_TEST((back2 == shorter));
}

BOOST_DATA_TEST_CASE_F(clean_check, every_message_size_class_crosses_intact, bdata::make(methods),
                       method) {
  // Payloads from 256 KiB on are copied straight between the processes where the system allows
  // it: every size from a little below to a little above that (whatever the few bytes that frame
  // a message), each in both directions, then one far above.
  mproc::process_pool pool(options(method));
  constexpr std::size_t threshold = std::size_t{256} << 10;
  std::vector<std::size_t> sizes{0, 1};
  for (std::size_t n = threshold - 40; n <= threshold + 8; ++n) sizes.push_back(n);
  sizes.push_back(std::size_t{256} << 20);
  for (const std::size_t n : sizes) {
    std::vector<char> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131) ^ (i >> 11) ^ n);
    const std::vector<char> back = pool.submit<tasks::echo_bytes>(v).get();
    BOOST_TEST((back == v), "an echo of " << n << " bytes came back as " << back.size());
  }
}

BOOST_DATA_TEST_CASE_F(clean_check, large_results_of_every_shape_cross_intact, bdata::make(methods),
                       method) {
  // A large result of one call that is one block is read straight into the caller's result,
  // any other large result into a buffer first: each shape, below and above 256 KiB, and a map
  // whose chunks carry several large results each.
  mproc::process_pool pool(options(method));
  constexpr std::size_t threshold = std::size_t{256} << 10;
  for (const std::size_t bytes : {threshold - 9, threshold - 8, threshold, threshold + 3,
                                  threshold + 8, std::size_t{5} << 20}) {
    BOOST_TEST_CONTEXT("about " << bytes << " bytes") {
      BOOST_TEST(pool.submit<tasks::text_of>(bytes).get() == tasks::text_of(bytes));
      BOOST_TEST((pool.submit<tasks::ints_of>(bytes / 4).get() == tasks::ints_of(bytes / 4)));
      BOOST_TEST((pool.submit<tasks::doubles_of>(bytes / 8).get() == tasks::doubles_of(bytes / 8)));
      BOOST_TEST((pool.submit<tasks::texts_of>(bytes).get() == tasks::texts_of(bytes)));
      BOOST_TEST((pool.submit<tasks::pair_of>(bytes / 4).get() == tasks::pair_of(bytes / 4)));
    }
  }
  const std::vector<std::size_t> sizes{threshold / 8, threshold / 8 + 1, std::size_t{1} << 20, 3};
  const std::vector<std::vector<double>> mapped = pool.map<tasks::doubles_of>(sizes, 2);
  BOOST_TEST_REQUIRE(mapped.size() == sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    BOOST_TEST((mapped[i] == tasks::doubles_of(sizes[i])), "map item " << i);
  }
}

BOOST_FIXTURE_TEST_CASE(direct_copies_are_turned_off_and_on_by_their_variable, clean_check) {
  // Large messages cross intact either way, and the first pool with each setting says which
  // way they went (MPROC_DEBUG; once per process and kind of line). 1 copies directly even
  // where that is slower (under Wine), which is what tests the Windows copies there.
  mproc_test::set_env("MPROC_DEBUG", "1");
  for (const auto& [setting, told] :
       {std::pair{"0", "large messages go through shared memory: MPROC_DIRECT_COPIES=0"},
        std::pair{"1", "bytes are copied directly between processes"}}) {
    BOOST_TEST_CONTEXT("MPROC_DIRECT_COPIES=" << setting) {
      mproc_test::set_env("MPROC_DIRECT_COPIES", setting);
      mproc_test::captured_stderr err;
      {
        mproc::process_pool pool(options(mproc::start_method::spawn, 1));
        // Twice the same size: where the worker commits its landing area as large tasks come
        // (Windows), the second one lands.
        for (const std::size_t n :
             {std::size_t{1} << 18, std::size_t{3} << 20, std::size_t{3} << 20}) {
          std::vector<char> v(n);
          for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>(i * 31 + (i >> 9));
          BOOST_TEST((pool.submit<tasks::echo_bytes>(v).get() == v));
          BOOST_TEST((pool.submit<tasks::doubles_of>(n).get() == tasks::doubles_of(n)));
        }
      }
      const std::string text = err.text();
      BOOST_TEST(text.find(told) != std::string::npos, text);
    }
  }
  mproc_test::set_env("MPROC_DIRECT_COPIES", "yes");
  try {
    mproc::process_pool pool(options(mproc::start_method::spawn, 1));
    BOOST_FAIL("a bad MPROC_DIRECT_COPIES was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("MPROC_DIRECT_COPIES: 'yes' is neither 0") !=
               std::string::npos);
  }
  mproc_test::unset_env("MPROC_DIRECT_COPIES");
  mproc_test::unset_env("MPROC_DEBUG");
}

BOOST_DATA_TEST_CASE_F(clean_check, a_throwing_task_becomes_remote_error_and_the_pool_goes_on,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  mproc::future<int> f = pool.submit<tasks::throw_custom>(3);
  try {
    f.get();
    BOOST_FAIL("get() did not throw");
  } catch (const mproc::remote_error& e) {
    BOOST_TEST(e.type() == "tasks::custom_error");
    BOOST_TEST(e.message() == "custom failure 3");
    BOOST_TEST(std::string(e.what()).find("custom failure 3") != std::string::npos);
  }
  BOOST_CHECK_THROW(pool.submit<tasks::fail_on_negative>(-1).get(), mproc::remote_error);
  BOOST_TEST(pool.submit<tasks::square>(5).get() == 25);

  // map rethrows the first failure in input order, and the pool still works afterwards.
  try {
    pool.map<tasks::fail_on_negative>(std::vector<int>{1, 2, -3, 4, -5}, 1);
    BOOST_FAIL("map did not throw");
  } catch (const mproc::remote_error& e) {
    BOOST_TEST(e.type() == "std::invalid_argument");
    BOOST_TEST(e.message() == "negative: -3");
  }
  BOOST_TEST(pool.map<tasks::square>(std::vector<int>{1, 2, 3}).size() == 3U);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_crashed_worker_fails_its_task_and_is_replaced,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  try {
    pool.submit<tasks::abort_worker>(0).get();
    BOOST_FAIL("get() did not throw");
  } catch (const mproc::worker_crashed& e) {
    mproc_test::check_report(e, mproc_test::abort_report());
    BOOST_TEST(e.pid() > 0);
    BOOST_TEST(std::string(e.what()).find("tasks::abort_worker") != std::string::npos);
  }
  const std::vector<int> ys = pool.map<tasks::square>(std::vector<int>{1, 2, 3, 4}, 1);
  BOOST_TEST((ys == std::vector<int>{1, 4, 9, 16}));
}

BOOST_DATA_TEST_CASE_F(clean_check, as_completed_yields_every_future_once, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method));
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(pool.submit<tasks::square>(i));
  std::set<int> seen;
  for (mproc::future<int>& f : mproc::as_completed(fs)) {
    BOOST_TEST(f.ready());
    seen.insert(f.get());
  }
  BOOST_TEST(seen.size() == 50U);
  BOOST_TEST(seen.count(49 * 49) == 1U);
}

BOOST_DATA_TEST_CASE_F(clean_check, wait_for_and_cancel_follow_the_task_state, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method, 1));
  mproc_test::gate gate;
  mproc::future<int> running = pool.submit<tasks::wait_at_gate>(gate.token());
  mproc::future<int> queued = pool.submit<tasks::square>(3);
  gate.wait_until_entered();  // the worker runs wait_at_gate
  BOOST_TEST((running.wait_for(std::chrono::milliseconds(20)) == std::future_status::timeout));
  BOOST_TEST(!running.ready());
  BOOST_TEST(!running.cancel());  // already started
  BOOST_TEST(queued.cancel());
  BOOST_TEST(queued.ready());
  BOOST_CHECK_THROW(queued.get(), mproc::cancelled_error);
  gate.release('k');
  BOOST_TEST((running.wait_for(std::chrono::seconds(60)) == std::future_status::ready));
  BOOST_TEST(running.get() == 'k');
  BOOST_CHECK_THROW(running.get(), std::future_error);
}

// A task submitted to an idle worker is collected by the thread that waits for it; every other
// way of waiting must still see it complete.
BOOST_DATA_TEST_CASE_F(clean_check, a_task_sent_to_an_idle_worker_completes_however_it_is_awaited,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 2));
  BOOST_TEST(pool.submit<tasks::square>(1).get() == 1);  // both workers are idle now
  const auto limit = std::chrono::seconds(60);

  mproc::future<int> timed = pool.submit<tasks::square>(2);
  BOOST_TEST((timed.wait_for(limit) == std::future_status::ready));
  BOOST_TEST(timed.get() == 4);

  mproc::future<int> polled = pool.submit<tasks::square>(3);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!polled.ready() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  BOOST_TEST(polled.ready());
  BOOST_TEST(polled.get() == 9);

  mproc::future<int> called = pool.submit<tasks::square>(4);
  std::promise<void> done;
  std::future<void> done_signal = done.get_future();
  called.add_done_callback([&done] { done.set_value(); });
  BOOST_TEST((done_signal.wait_for(limit) == std::future_status::ready));
  BOOST_TEST(called.get() == 16);

  std::vector<mproc::future<int>> one;
  one.push_back(pool.submit<tasks::square>(5));
  for (mproc::future<int>& f : mproc::as_completed(one)) BOOST_TEST(f.get() == 25);

  mproc::future<int> waited = pool.submit<tasks::square>(6);
  waited.wait();
  BOOST_TEST(waited.ready());
  BOOST_TEST(waited.get() == 36);
}

// A task queued while both workers hold a task sent straight to them runs on the one that is
// done, not behind the one that is long.
BOOST_DATA_TEST_CASE_F(clean_check, a_queued_task_does_not_wait_behind_a_long_direct_task,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 2));
  for (int i = 0; i < 20; ++i) BOOST_TEST(pool.submit<tasks::square>(i).get() == i * i);
  mproc_test::gate gate;
  mproc::future<int> long_one = pool.submit<tasks::wait_at_gate>(gate.token());
  gate.wait_until_entered();
  mproc::future<int> short_one = pool.submit<tasks::square>(2);  // to the other, idle worker
  mproc::future<int> queued = pool.submit<tasks::square>(3);     // no worker idle: queued
  BOOST_TEST((queued.wait_for(std::chrono::seconds(60)) == std::future_status::ready));
  BOOST_TEST(queued.get() == 9);
  BOOST_TEST(short_one.get() == 4);
  gate.release('z');
  BOOST_TEST(long_one.get() == 'z');
}

// A task submitted to an idle worker and never waited for still times out: with nobody waiting
// and nothing else queued, its worker's driver alone enforces the limit.
BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{
    "observes the worker's end through its pid"}))
BOOST_DATA_TEST_CASE_F(clean_check, a_task_nobody_waits_for_still_times_out, bdata::make(methods),
                       method) {
  mproc::pool_options o = options(method, 1);
  o.task_timeout = std::chrono::milliseconds(200);
  mproc::process_pool pool(o);
  const int worker = pool.submit<tasks::worker_pid>().get();  // the worker is idle now
  mproc_test::gate gate;                                      // never released: the task hangs
  mproc::future<int> hung = pool.submit<tasks::wait_at_gate>(gate.token());
  gate.wait_until_entered();
  BOOST_TEST(comes_true([worker] { return !mproc_test::process_exists(worker); }),
             "worker " << worker << " was not killed");
  BOOST_TEST((hung.wait_for(std::chrono::seconds(60)) == std::future_status::ready));
  BOOST_CHECK_THROW(hung.get(), mproc::task_timeout);
  BOOST_TEST(pool.submit<tasks::worker_pid>().get() != worker);
}

BOOST_DATA_TEST_CASE_F(clean_check, task_timeout_kills_the_worker_and_the_pool_goes_on,
                       bdata::make(methods), method) {
  mproc::pool_options o = options(method, 1);
  o.task_timeout = std::chrono::milliseconds(200);
  mproc::process_pool pool(o);
  mproc_test::gate gate;  // never released: the task hangs
  try {
    pool.submit<tasks::wait_at_gate>(gate.token()).get();
    BOOST_FAIL("get() did not throw");
  } catch (const mproc::task_timeout& e) {
    BOOST_TEST(e.limit() == std::chrono::milliseconds(200));
  }
  BOOST_TEST(pool.submit<tasks::square>(9).get() == 81);
}

BOOST_DATA_TEST_CASE_F(clean_check, submit_after_shutdown_throws_pool_closed, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method));
  BOOST_TEST(pool.submit<tasks::square>(2).get() == 4);
  pool.shutdown();
  pool.shutdown();  // idempotent
  BOOST_CHECK_THROW(pool.submit<tasks::square>(2), mproc::pool_closed);
  BOOST_CHECK_THROW(pool.map<tasks::square>(std::vector<int>{1}), mproc::pool_closed);
  BOOST_TEST(mproc_test::child_pids().empty());
}

BOOST_DATA_TEST_CASE_F(clean_check, destructor_waits_for_pending_tasks, bdata::make(methods),
                       method) {
  std::vector<mproc::future<int>> fs;
  {
    mproc::process_pool pool(options(method));
    for (int i = 0; i < 200; ++i) fs.push_back(pool.submit<tasks::square>(i));
  }
  for (int i = 0; i < 200; ++i) {
    BOOST_TEST(fs[static_cast<std::size_t>(i)].ready());
    BOOST_TEST(fs[static_cast<std::size_t>(i)].get() == i * i);
  }
}

BOOST_DATA_TEST_CASE_F(clean_check, shutdown_with_cancel_pending_kills_running_tasks,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 1));
  mproc_test::gate gate;  // never released: the running task would block for ever
  mproc::future<int> running = pool.submit<tasks::wait_at_gate>(gate.token());
  std::vector<mproc::future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(pool.submit<tasks::square>(i));
  gate.wait_until_entered();  // the task is running now
  pool.shutdown(true, true);
  BOOST_CHECK_THROW(running.get(), mproc::cancelled_error);
  for (auto& f : queued) BOOST_CHECK_THROW(f.get(), mproc::cancelled_error);
}

static_assert(mproc::serializable<mproc::shared_array<double>>);

BOOST_DATA_TEST_CASE_F(clean_check, shared_array_is_read_and_written_in_place_by_workers,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  mproc::shared_array<double> a(1000);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<double>(i);
  auto first = pool.submit<tasks::sum_and_double>(a, std::size_t{0}, std::size_t{500});
  auto second = pool.submit<tasks::sum_and_double>(a, std::size_t{500}, std::size_t{1000});
  BOOST_TEST(first.get() + second.get() == 999.0 * 1000 / 2);
  for (std::size_t i = 0; i < a.size(); ++i) BOOST_TEST(a[i] == 2.0 * static_cast<double>(i));
  // Each worker mapped the array once and keeps reusing that view.
  BOOST_TEST(pool.submit<tasks::sum_and_double>(a, std::size_t{0}, std::size_t{2}).get() == 2.0);
}

std::string comm_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{
    "reads /proc/<pid>/comm"}))
BOOST_DATA_TEST_CASE_F(clean_check, workers_carry_the_name_of_the_program, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method, 1));
  const int worker = pool.submit<tasks::worker_pid>().get();
  BOOST_TEST(comm_of(worker) == comm_of(mproc_test::current_pid()));
}

BOOST_AUTO_TEST_CASE(a_shared_array_too_large_for_memory_is_a_length_error_creating_nothing) {
  const std::vector<std::string> before = mproc_test::segments_of(mproc_test::current_pid());
  try {
    const mproc::shared_array<double> a(SIZE_MAX / 4);
    BOOST_FAIL("an array of " << a.size() << " doubles was created");
  } catch (const std::length_error& e) {
    BOOST_TEST(std::string(e.what()).find("address range") != std::string::npos, e.what());
  }
  BOOST_TEST(mproc_test::segments_of(mproc_test::current_pid()) == before);
}

BOOST_AUTO_TEST_CASE(a_pool_of_more_than_max_workers_is_a_start_error_naming_the_bound) {
  mproc::pool_options o;
  o.workers = std::size_t{1} << 62;
  try {
    mproc::process_pool pool(o);
    BOOST_FAIL("a pool of 2^62 workers started");
  } catch (const mproc::start_error& e) {
    BOOST_TEST(std::string(e.what()).find("at most 4096") != std::string::npos, e.what());
  }
}

// The shared-memory mappings of `bytes` bytes that process `pid` holds from this process (the
// lines of its /proc/<pid>/maps). An array is named "mproc-<pid>-<namespace>-<start
// time>-a<random hex>"; the size tells it from a channel, which is named the same way where
// channels are not memfds.
std::vector<std::string> arrays_mapped_by(int pid, std::size_t bytes) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  const std::string prefix = "/dev/shm/mproc-" + std::to_string(mproc_test::current_pid()) + "-";
  std::vector<std::string> found;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(prefix) == std::string::npos) continue;
    const std::size_t dash = line.find('-');
    const std::size_t space = line.find(' ');
    const auto start = std::stoull(line.substr(0, dash), nullptr, 16);
    const auto end = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
    if (end - start == bytes) found.push_back(line);
  }
  return found;
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{
    "reads the worker's /proc/<pid>/maps"}))
BOOST_DATA_TEST_CASE_F(clean_check, an_idle_worker_unmaps_the_arrays_it_kept_mapped,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 1));
  const int worker = pool.submit<tasks::worker_pid>().get();
  constexpr std::size_t array_bytes = std::size_t{8} << 20;
  {
    mproc::shared_array<double> a(array_bytes / sizeof(double));
    a[0] = 1.0;
    BOOST_TEST(pool.submit<tasks::sum_and_double>(a, std::size_t{0}, std::size_t{1}).get() == 1.0);
    BOOST_TEST(pool.submit<tasks::sum_and_double>(a, std::size_t{0}, std::size_t{1}).get() == 2.0);
  }  // released here: the worker has no task left that uses it
  // Reusing the mapping between tasks must not keep the memory alive: once idle, the worker
  // unmaps it (after 100 ms). Polled with a generous deadline: the machine may be slow.
  std::vector<std::string> mapped;
  comes_true([&] {
    mapped = arrays_mapped_by(worker, array_bytes);
    return mapped.empty();
  });
  BOOST_TEST(mapped.empty(),
             "still mapped in worker " << worker << ": " << (mapped.empty() ? "" : mapped.front()));
  BOOST_TEST(pool.submit<tasks::worker_pid>().get() == worker);  // the same, healthy worker
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{
    "kills a worker from outside with SIGKILL"}))
BOOST_DATA_TEST_CASE_F(clean_check, an_idle_worker_that_dies_is_replaced_before_the_next_task,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 1));
  const int dead = pool.submit<tasks::worker_pid>().get();
  const std::vector<int> before = mproc_test::child_pids();  // the worker, and any zygote
  BOOST_TEST_REQUIRE(mproc_test::kill_process(dead));
  // The pool replaces it without a task to notice the death: a new process appears. (That the
  // dead one is reaped says nothing here: a zygote reaps its children by itself.)
  const auto is_new = [&before](int pid) {
    return std::find(before.begin(), before.end(), pid) == before.end();
  };
  BOOST_TEST(comes_true([&is_new] {
               const std::vector<int> now = mproc_test::child_pids();
               return std::any_of(now.begin(), now.end(), is_new);
             }),
             "worker " << dead << " was not replaced while idle");
  // No task is sent to the dead worker: the next one runs on its replacement.
  const int next = pool.submit<tasks::worker_pid>().get();
  BOOST_TEST(next != dead);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_shared_array_released_before_its_task_is_a_clear_error,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 1));
  mproc_test::gate gate;
  auto busy = pool.submit<tasks::wait_at_gate>(gate.token());
  mproc::future<double> late;
  {
    mproc::shared_array<double> a(10);
    late = pool.submit<tasks::sum_and_double>(a, std::size_t{0}, std::size_t{10});
  }  // the application's last copy is gone before the worker gets to the task
  gate.release();
  BOOST_TEST(busy.get() == 'x');
  try {
    late.get();
    BOOST_FAIL("the task ran on a released array");
  } catch (const mproc::serialization_error& e) {
    BOOST_TEST(std::string(e.what()).find("released before this task used it") !=
               std::string::npos);
  }
}

BOOST_FIXTURE_TEST_CASE(spawned_workers_never_run_main, clean_check) {
  const std::filesystem::path marker =
      std::filesystem::temp_directory_path() /
      ("mproc-marker-" + std::to_string(mproc_test::current_pid()));
  std::filesystem::remove(marker);
  mproc_test::set_env("MPROC_TEST_MAIN_MARKER", marker.string().c_str());
  std::set<int> pids;
  {
    mproc::process_pool pool(options(mproc::start_method::spawn));
    for (int i = 0; i < 20; ++i) pids.insert(pool.submit<tasks::worker_pid>().get());
  }
  mproc_test::unset_env("MPROC_TEST_MAIN_MARKER");
  BOOST_TEST(pids.count(mproc_test::current_pid()) == 0U);
  BOOST_TEST(!pids.empty());
  // Every spawned worker inherited the variable; none of them reached the line that writes it.
  BOOST_TEST(!std::filesystem::exists(marker));
  std::filesystem::remove(marker);
}

// Keeps a thread alive, holding a mutex, for as long as it exists: the state in which a fork
// copies a locked lock into the child.
struct thread_holding_a_lock {
  std::mutex own;
  std::mutex& held;
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  bool locked = false;
  std::thread t;
  explicit thread_holding_a_lock(std::mutex& to_hold) : held(to_hold) { start(); }
  thread_holding_a_lock() : held(own) { start(); }
  void start() {
    t = std::thread([this] {
      std::lock_guard hold(held);
      std::unique_lock lock(m);
      locked = true;
      cv.notify_all();
      cv.wait(lock, [this] { return done; });
    });
    std::unique_lock lock(m);
    cv.wait(lock, [this] { return locked; });
  }
  ~thread_holding_a_lock() {
    {
      std::lock_guard lock(m);
      done = true;
    }
    cv.notify_all();
    t.join();
  }
};

BOOST_FIXTURE_TEST_CASE(automatic_forks_only_while_single_threaded, clean_check,
                        *boost::unit_test::precondition(mproc_test::not_under_tsan()) *
                            boost::unit_test::precondition(mproc_test::posix_only{
                                "automatic chooses between fork and forkserver"})) {
  mproc_test::unset_env("MPROC_START_METHOD");
  {
    mproc::process_pool pool(options(mproc::start_method::automatic));
    BOOST_TEST(pool.start_method() == mproc::start_method::fork);
  }
  // Another thread holds a lock that tasks take: a fork now would copy it locked.
  const thread_holding_a_lock other(tasks::held_elsewhere);
  mproc::pool_options o = options(mproc::start_method::automatic);
  o.task_timeout = std::chrono::seconds(60);  // a hang would become an error, not a stuck test
  mproc::process_pool pool(o);
  BOOST_TEST(pool.start_method() == mproc::start_method::forkserver);
  BOOST_TEST(pool.submit<tasks::take_the_lock>(4).get() == 5);
}

BOOST_FIXTURE_TEST_CASE(fork_is_refused_in_a_process_with_threads_unless_allowed, clean_check,
                        *boost::unit_test::precondition(mproc_test::not_under_tsan()) *
                            boost::unit_test::precondition(mproc_test::posix_only{"fork"})) {
  const thread_holding_a_lock other;
  try {
    mproc::process_pool pool(options(mproc::start_method::fork));
    BOOST_FAIL("fork was accepted in a process with threads");
  } catch (const mproc::start_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("threads") != std::string::npos);
    BOOST_TEST(what.find("forkserver") != std::string::npos);
    BOOST_TEST(what.find("allow_fork_with_threads") != std::string::npos);
  }
  // Opting in works: the lock held by the other thread is copied locked, and these tasks do
  // not touch it.
  mproc::pool_options o = options(mproc::start_method::fork);
  o.allow_fork_with_threads = true;
  mproc::process_pool pool(o);
  BOOST_TEST(pool.submit<tasks::square>(5).get() == 25);
}

BOOST_FIXTURE_TEST_CASE(two_fork_pools_alive_at_once_both_fork, clean_check,
                        *boost::unit_test::precondition(mproc_test::not_under_tsan()) *
                            boost::unit_test::precondition(mproc_test::posix_only{"fork"})) {
  mproc_test::unset_env("MPROC_START_METHOD");
  tasks::g_marker = 42;
  mproc::process_pool first(options(mproc::start_method::fork));
  BOOST_TEST(first.submit<tasks::read_marker>(0).get() == 42);  // its threads run now
  // The first pool's threads are the library's own: they neither make a second fork pool
  // refuse nor turn `automatic` away from fork.
  tasks::g_marker = 43;
  mproc::process_pool second(options(mproc::start_method::fork));
  mproc::process_pool third(options(mproc::start_method::automatic));
  BOOST_TEST(third.start_method() == mproc::start_method::fork);
  BOOST_TEST(second.submit<tasks::read_marker>(0).get() == 43);
  BOOST_TEST(third.submit<tasks::read_marker>(0).get() == 43);
  BOOST_TEST(first.submit<tasks::read_marker>(0).get() == 42);  // as at its own start
  const std::vector<int> xs(200, 0);
  BOOST_TEST(second.map<tasks::read_marker>(xs) == std::vector<int>(200, 43),
             boost::test_tools::per_element());
  // A thread the application started still makes an explicit fork refuse.
  const thread_holding_a_lock other;
  BOOST_CHECK_EXCEPTION(mproc::process_pool(options(mproc::start_method::fork)), mproc::start_error,
                        [](const mproc::start_error& e) {
                          return std::string(e.what()).find("did not start") != std::string::npos;
                        });
}

BOOST_FIXTURE_TEST_CASE(forkserver_is_safe_with_eight_threads_holding_locks, clean_check,
                        *boost::unit_test::precondition(mproc_test::posix_only{"forkserver"})) {
  std::vector<std::unique_ptr<thread_holding_a_lock>> threads;
  for (int i = 0; i < 8; ++i) threads.push_back(std::make_unique<thread_holding_a_lock>());
  mproc::process_pool pool(options(mproc::start_method::forkserver));
  BOOST_TEST(pool.map<tasks::square>(std::vector<int>{1, 2, 3}) == std::vector<int>({1, 4, 9}));
  // A crash replacement is forked from the server too, never from this process.
  BOOST_CHECK_THROW(pool.submit<tasks::abort_worker>(0).get(), mproc::worker_crashed);
  BOOST_TEST(pool.submit<tasks::square>(6).get() == 36);
}

BOOST_FIXTURE_TEST_CASE(environment_variable_chooses_the_automatic_method, clean_check,
                        *boost::unit_test::precondition(mproc_test::not_under_tsan())) {
  mproc_test::set_env("MPROC_START_METHOD", "spawn");
  {
    mproc::process_pool pool(options(mproc::start_method::automatic));
    BOOST_TEST(pool.start_method() == mproc::start_method::spawn);
  }
  if (!mproc_test::on_windows) {
    // An explicit method wins over the variable.
    mproc::process_pool pool(options(mproc::start_method::fork));
    BOOST_TEST(pool.start_method() == mproc::start_method::fork);
  }
  mproc_test::set_env("MPROC_START_METHOD", "vfork");
  try {
    mproc::process_pool pool(options(mproc::start_method::automatic));
    BOOST_FAIL("a bad MPROC_START_METHOD was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("MPROC_START_METHOD") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("forkserver") != std::string::npos);
  }
  mproc_test::unset_env("MPROC_START_METHOD");
}

BOOST_AUTO_TEST_SUITE_END()
