// Futures, waiting and the map family on both pools: wait and its return_when, get_for, the
// states of a future, done-callbacks that throw, imap and imap_unordered, starmap, forced stops,
// and the executor concept.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <mutex>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace bdata = boost::unit_test::data;
using mproc_test::clean_check;
using mproc_test::options;
using namespace std::chrono_literals;

namespace jobs {

int square(int x) { return x * x; }
long long twice(long long x) { return 2 * x; }
int fail_on_negative(int x) {
  if (x < 0) throw std::invalid_argument("negative: " + std::to_string(x));
  return x;
}
// Waits at the gate named by the token, then returns the byte the test gave.
int wait_at_gate(std::string token) { return mproc_test::pass_gate(token); }
// "gate:TOKEN" waits at that gate and returns -1; anything else is a number, returned.
int slow_or_fast(std::string item) {
  if (item.rfind("gate:", 0) == 0) {
    mproc_test::pass_gate(item.substr(5));
    return -1;
  }
  return std::stoi(item);
}
std::string label(std::string name, int n, double x) {
  return name + "#" + std::to_string(n) + "@" + std::to_string(static_cast<int>(x * 10));
}
int add(int a, int b) { return a + b; }

struct not_a_std_exception {};

// A value whose loading fails where the test wants it to: -1 throws a standard exception, -2 a
// value that is no std::exception. Saving always works.
struct fragile {
  int value = 0;
  template <class Archive>
  void save(Archive& ar, const unsigned int /*version*/) const {
    ar << value;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int /*version*/) {
    ar >> value;
    if (value == -1) throw std::runtime_error("fragile value refused");
    if (value == -2) throw not_a_std_exception{};
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};
fragile make_fragile(int v) { return fragile{v}; }
int read_fragile(fragile f) { return f.value; }

}  // namespace jobs

namespace {

const std::vector<mproc::start_method> methods = mproc_test::methods_under_test();

// Collects what done-callbacks throw while it lives.
struct caught_callbacks {
  struct report {
    std::string task;
    std::string message;
  };
  caught_callbacks() {
    previous = mproc::set_callback_error_handler([this](const mproc::callback_failure& f) {
      std::lock_guard lock(mutex);
      std::string message;
      try {
        std::rethrow_exception(f.error);
      } catch (const std::exception& e) {
        message = e.what();
      } catch (...) {
        message = "?";
      }
      reports.push_back({std::string(f.task), message});
    });
  }
  ~caught_callbacks() { mproc::set_callback_error_handler(std::move(previous)); }
  std::vector<report> taken() {
    std::lock_guard lock(mutex);
    return reports;
  }
  std::mutex mutex;
  std::vector<report> reports;
  mproc::callback_error_handler previous;
};

// Adds three callbacks to `f`, the middle one throwing; `ran` counts the others, and the last
// sets `finished` (a promise: MinGW's std::latch was seen to miss its wake-up under Wine).
template <class T>
void add_three_callbacks(mproc::future<T>& f, std::atomic<int>& ran, std::promise<void>& finished) {
  f.add_done_callback([&ran] { ++ran; });
  f.add_done_callback([] { throw std::runtime_error("callback failed on purpose"); });
  f.add_done_callback([&ran, &finished] {
    ++ran;
    finished.set_value();
  });
}

// A generic function over any pool: the executor concept is all it knows.
template <mproc::executor Pool>
long long sum_of_squares(Pool& pool, int n) {
  std::vector<int> xs(static_cast<std::size_t>(n));
  std::iota(xs.begin(), xs.end(), 0);
  long long sum = 0;
  for (int y : pool.template map<&jobs::square>(xs)) sum += y;
  for (int y : pool.template imap<&jobs::square>(xs, 7)) sum += y;
  sum += pool.template submit<&jobs::square>(n).get();
  return sum;
}

}  // namespace

static_assert(mproc::executor<mproc::process_pool>);
static_assert(mproc::executor<mproc::thread_pool>);

BOOST_AUTO_TEST_SUITE(futures)

// First in this file: on systems where the peak cannot be reset, the peak is this test's.
BOOST_DATA_TEST_CASE_F(clean_check, imap_reads_an_endless_input_only_as_far_as_its_window,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  mproc_test::reset_peak_memory();
  const std::size_t before = mproc_test::peak_memory();
  std::size_t seen = 0;
  long long sum = 0;
  // Endless: a pool that read its input eagerly (Python's Pool.imap) would never return.
  for (long long y : pool.imap<jobs::twice>(std::views::iota(0LL))) {
    BOOST_REQUIRE(y == 2 * static_cast<long long>(seen));
    sum += y;
    if (++seen == 1000) break;
  }
  BOOST_TEST(seen == 1000U);
  BOOST_TEST(sum == 999LL * 1000);
  // 100 million items: 800 MB of arguments and results if read ahead, about nothing here.
  seen = 0;
  for (long long y : pool.imap<jobs::twice>(std::views::iota(0LL, 100'000'000LL))) {
    BOOST_REQUIRE(y == 2 * static_cast<long long>(seen));
    if (++seen == 1000) break;
  }
  BOOST_TEST(seen == 1000U);
  const std::size_t grown = mproc_test::peak_memory() - before;
  BOOST_TEST_MESSAGE("peak memory grew by " << grown / 1024 << " KiB");
  BOOST_TEST(grown < std::size_t{64} << 20);
}

BOOST_DATA_TEST_CASE_F(clean_check, imap_yields_every_result_in_input_order, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method));
  std::vector<int> xs(5000);
  std::iota(xs.begin(), xs.end(), -2500);
  std::vector<int> ys;
  for (int y : pool.imap<jobs::square>(xs)) ys.push_back(y);
  BOOST_TEST(ys == pool.map<jobs::square>(xs), boost::test_tools::per_element());
  // A fixed chunksize and window, and an rvalue view that the range keeps.
  std::size_t i = 0;
  for (int y : pool.imap<jobs::square>(xs | std::views::take(100), 3, 2)) {
    BOOST_TEST(y == xs[i] * xs[i]);
    ++i;
  }
  BOOST_TEST(i == 100U);
  std::vector<int> none;
  BOOST_TEST(std::ranges::distance(pool.imap<jobs::square>(none)) == 0);
}

BOOST_DATA_TEST_CASE_F(clean_check, imap_unordered_returns_fast_results_before_a_slow_one,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  mproc_test::gate gate;
  std::vector<std::string> items{"gate:" + gate.token()};
  for (int i = 1; i <= 20; ++i) items.push_back(std::to_string(i));
  auto results = pool.imap_unordered<jobs::slow_or_fast>(items, 1);
  auto it = results.begin();
  std::set<int> fast;
  // All twenty fast ones arrive while the slow one still waits at its gate.
  for (int k = 0; k < 20; ++k) {
    if (k > 0) ++it;
    fast.insert(*it);
  }
  BOOST_TEST(fast.size() == 20U);
  BOOST_TEST(*fast.begin() == 1);
  BOOST_TEST(*fast.rbegin() == 20);
  gate.release();
  ++it;
  BOOST_TEST(*it == -1);
  ++it;
  BOOST_TEST((it == results.end()));
}

BOOST_DATA_TEST_CASE_F(clean_check, an_error_in_imap_surfaces_at_its_item_and_the_rest_follow,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  std::vector<int> xs(100);
  std::iota(xs.begin(), xs.end(), 0);
  xs[55] = -1;
  auto results = pool.imap<jobs::fail_on_negative>(xs, 10);
  std::vector<int> before;
  auto it = results.begin();
  try {
    for (; it != results.end(); ++it) before.push_back(*it);
    BOOST_FAIL("the failed item did not surface");
  } catch (const mproc::remote_error& e) {
    BOOST_TEST(e.type() == "std::invalid_argument");
    BOOST_TEST(std::string(e.what()).find("negative: -1") != std::string::npos);
  }
  // Items 0-49 came before the failed chunk (50-59); it fails whole, and the rest follow.
  BOOST_TEST(before.size() == 50U);
  BOOST_TEST(before.back() == 49);
  std::vector<int> after;
  for (++it; it != results.end(); ++it) after.push_back(*it);
  BOOST_TEST(after.size() == 40U);
  BOOST_TEST(after.front() == 60);
  BOOST_TEST(after.back() == 99);
}

BOOST_DATA_TEST_CASE_F(clean_check, wait_returns_when_each_return_when_holds, bdata::make(methods),
                       method) {
  mproc::process_pool pool(options(method));
  mproc_test::gate gate;
  std::vector<mproc::future<int>> fs;
  fs.push_back(pool.submit<jobs::wait_at_gate>(gate.token()));
  gate.wait_until_entered();  // one worker is held; the other runs the rest
  fs.push_back(pool.submit<jobs::square>(3));

  mproc::wait_result r = mproc::wait(fs, mproc::return_when::first_completed);
  BOOST_TEST(r.done == std::vector<std::size_t>{1}, boost::test_tools::per_element());
  BOOST_TEST(r.not_done == std::vector<std::size_t>{0}, boost::test_tools::per_element());

  // A failure ends first_exception; a success alone does not.
  fs.push_back(pool.submit<jobs::fail_on_negative>(-1));
  r = mproc::wait(fs, mproc::return_when::first_exception);
  BOOST_TEST(r.done == (std::vector<std::size_t>{1, 2}), boost::test_tools::per_element());
  BOOST_TEST(r.not_done == std::vector<std::size_t>{0}, boost::test_tools::per_element());

  // all_completed with a timeout comes back with the held task still not done.
  r = mproc::wait_for(fs, 50ms);
  BOOST_TEST(r.not_done == std::vector<std::size_t>{0}, boost::test_tools::per_element());
  BOOST_TEST(fs[0].valid());
  gate.release('w');
  r = mproc::wait(fs);
  BOOST_TEST(r.done == (std::vector<std::size_t>{0, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(r.not_done.empty());
  BOOST_TEST(fs[0].get() == 'w');
  BOOST_TEST(fs[1].get() == 9);
  BOOST_CHECK_THROW(fs[2].get(), mproc::remote_error);
  // Futures already consumed are in neither list.
  r = mproc::wait(fs, mproc::return_when::first_completed);
  BOOST_TEST(r.done.empty());
  BOOST_TEST(r.not_done.empty());
}

BOOST_DATA_TEST_CASE_F(clean_check, get_for_times_out_then_succeeds_and_states_follow_the_task,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method, 1));
  mproc_test::gate gate;
  mproc::future<int> running = pool.submit<jobs::wait_at_gate>(gate.token());
  mproc::future<int> queued = pool.submit<jobs::square>(4);
  mproc::future<int> dropped = pool.submit<jobs::square>(5);
  gate.wait_until_entered();
  BOOST_TEST(running.running());
  BOOST_TEST(!running.cancelled());
  BOOST_TEST(!queued.running());
  BOOST_CHECK_EXCEPTION(running.get_for(20ms), mproc::wait_timeout,
                        [](const mproc::wait_timeout& e) {
                          const std::string what = e.what();
                          return what.find("wait_at_gate") != std::string::npos &&
                                 what.find("20 ms") != std::string::npos &&
                                 e.waited() == std::chrono::milliseconds(20);
                        });
  BOOST_TEST(running.valid());  // the task goes on
  // cancel() is true exactly when the task will never run, however often it is asked.
  BOOST_TEST(!running.cancel());
  BOOST_TEST(dropped.cancel());
  BOOST_TEST(dropped.cancel());
  BOOST_TEST(dropped.cancelled());
  BOOST_TEST(!dropped.running());
  BOOST_CHECK_THROW(dropped.get(), mproc::cancelled_error);
  gate.release('g');
  BOOST_TEST(running.get_for(60s) == 'g');
  BOOST_TEST(!running.valid());
  BOOST_TEST(queued.get_for(60s) == 16);
  mproc::future<int> done = pool.submit<jobs::square>(6);
  done.wait();
  BOOST_TEST(!done.cancel());  // finished
  BOOST_TEST(!done.cancelled());
  BOOST_TEST(!done.exception());
  BOOST_TEST(done.get() == 36);
}

BOOST_DATA_TEST_CASE_F(clean_check, exception_reports_the_error_without_consuming_the_future,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  mproc::future<int> f = pool.submit<jobs::fail_on_negative>(-3);
  const std::exception_ptr e = f.exception();
  BOOST_REQUIRE(e);
  BOOST_CHECK_THROW(std::rethrow_exception(e), mproc::remote_error);
  BOOST_TEST(f.valid());
  BOOST_CHECK_THROW(f.get(), mproc::remote_error);
}

BOOST_DATA_TEST_CASE_F(clean_check, as_completed_with_a_timeout_throws_past_it,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  mproc_test::gate gate;
  std::vector<mproc::future<int>> fs;
  fs.push_back(pool.submit<jobs::wait_at_gate>(gate.token()));
  gate.wait_until_entered();
  fs.push_back(pool.submit<jobs::square>(2));
  std::vector<int> seen;
  BOOST_CHECK_EXCEPTION(
      {
        for (mproc::future<int>& f : mproc::as_completed(fs, 100ms)) seen.push_back(f.get());
      },
      mproc::wait_timeout,
      [](const mproc::wait_timeout& e) {
        return std::string(e.what()).find("1 of 2 futures") != std::string::npos;
      });
  BOOST_TEST(seen == std::vector<int>{4}, boost::test_tools::per_element());
  BOOST_TEST(fs[0].valid());
  gate.release('a');
  BOOST_TEST(fs[0].get() == 'a');
}

BOOST_DATA_TEST_CASE_F(clean_check, a_throwing_done_callback_is_reported_and_the_others_run,
                       bdata::make(methods), method) {
  caught_callbacks caught;
  mproc::process_pool pool(options(method));
  std::atomic<int> ran{0};
  // Pending: the callbacks run in the pool's thread that completes the task.
  mproc_test::gate gate;
  mproc::future<int> pending = pool.submit<jobs::wait_at_gate>(gate.token());
  gate.wait_until_entered();
  std::promise<void> pending_done;
  add_three_callbacks(pending, ran, pending_done);
  gate.release();
  BOOST_TEST(pending.get() == 'x');
  pending_done.get_future().wait();
  // Complete already: the callbacks run here, and nothing leaves add_done_callback.
  mproc::future<int> complete = pool.submit<jobs::square>(2);
  complete.wait();
  std::promise<void> complete_done;
  add_three_callbacks(complete, ran, complete_done);
  BOOST_TEST((complete_done.get_future().wait_for(0s) == std::future_status::ready));
  BOOST_TEST(ran.load() == 4);
  const auto reports = caught.taken();
  BOOST_REQUIRE(reports.size() == 2U);
  BOOST_TEST(reports[0].task.find("wait_at_gate") != std::string::npos);
  BOOST_TEST(reports[1].task.find("square") != std::string::npos);
  for (const auto& r : reports) BOOST_TEST(r.message == "callback failed on purpose");
  BOOST_TEST(complete.get() == 4);
}

BOOST_AUTO_TEST_CASE(a_throwing_done_callback_on_a_thread_pool_is_reported_too) {
  caught_callbacks caught;
  mproc::thread_pool pool(2);
  std::atomic<int> ran{0};
  std::promise<void> go;
  std::shared_future<void> opened = go.get_future().share();
  auto pending = pool.submit([opened] {
    opened.wait();
    return 1;
  });
  std::promise<void> pending_done;
  add_three_callbacks(pending, ran, pending_done);
  go.set_value();
  BOOST_TEST(pending.get() == 1);
  pending_done.get_future().wait();
  auto complete = pool.submit<jobs::square>(3);
  complete.wait();
  std::promise<void> complete_done;
  add_three_callbacks(complete, ran, complete_done);
  BOOST_TEST((complete_done.get_future().wait_for(0s) == std::future_status::ready));
  BOOST_TEST(ran.load() == 4);
  const auto reports = caught.taken();
  BOOST_REQUIRE(reports.size() == 2U);
  BOOST_TEST(reports[1].task.find("square") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_default_callback_error_handler_writes_the_task_and_the_error_to_stderr) {
  mproc::thread_pool pool(1);
  auto f = pool.submit<jobs::square>(2);
  f.wait();
  std::string written;
  {
    mproc_test::captured_stderr captured;
    f.add_done_callback([] { throw std::runtime_error("callback failed on purpose"); });
    written = captured.text();
  }
  BOOST_TEST_MESSAGE(written);
  BOOST_TEST(written.find("jobs::square") != std::string::npos);
  BOOST_TEST(written.find("std::runtime_error: callback failed on purpose") != std::string::npos);
  BOOST_TEST(f.get() == 4);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_result_that_fails_to_decode_here_is_a_serialization_error,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  const auto names_it = [](const mproc::serialization_error& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE(what);
    return what.find("make_fragile") != std::string::npos &&
           what.find("fragile") != std::string::npos &&
           what.find("std::runtime_error") != std::string::npos &&
           what.find("fragile value refused") != std::string::npos;
  };
  BOOST_CHECK_EXCEPTION(pool.submit<jobs::make_fragile>(-1).get(), mproc::serialization_error,
                        names_it);
  BOOST_CHECK_EXCEPTION(pool.map<jobs::make_fragile>(std::vector<int>{1, -1, 2}),
                        mproc::serialization_error, names_it);
  BOOST_TEST(pool.submit<jobs::make_fragile>(7).get().value == 7);  // the pool goes on
}

BOOST_DATA_TEST_CASE_F(clean_check, arguments_that_fail_to_decode_in_the_worker_name_the_cause,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  BOOST_CHECK_EXCEPTION(pool.submit<jobs::read_fragile>(jobs::fragile{-1}).get(),
                        mproc::serialization_error, [](const mproc::serialization_error& e) {
                          const std::string what = e.what();
                          BOOST_TEST_MESSAGE(what);
                          return what.find("read_fragile") != std::string::npos &&
                                 what.find("std::runtime_error: fragile value refused") !=
                                     std::string::npos;
                        });
  // A load() that throws something other than a std::exception is still a decode failure.
  BOOST_CHECK_EXCEPTION(pool.submit<jobs::read_fragile>(jobs::fragile{-2}).get(),
                        mproc::serialization_error, [](const mproc::serialization_error& e) {
                          const std::string what = e.what();
                          BOOST_TEST_MESSAGE(what);
                          return what.find("not_a_std_exception") != std::string::npos;
                        });
  BOOST_TEST(pool.submit<jobs::read_fragile>(jobs::fragile{5}).get() == 5);
}

BOOST_DATA_TEST_CASE_F(clean_check, map_takes_any_input_range_and_chunks_an_unsized_one,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  std::vector<int> xs(20000);
  std::iota(xs.begin(), xs.end(), 0);
  const auto odd = [](int x) { return x % 2 == 1; };
  // A filter view is not const-iterable, and has no size.
  auto odds = xs | std::views::filter(odd);
  std::size_t chunks = 0;
  const std::vector<int> ys =
      pool.map<jobs::square>(odds, 0, [&chunks](std::size_t, std::size_t) { ++chunks; });
  BOOST_REQUIRE(ys.size() == 10000U);
  for (std::size_t i = 0; i < ys.size(); ++i) {
    BOOST_REQUIRE(ys[i] == static_cast<int>((2 * i + 1) * (2 * i + 1)));
  }
  // Progress is reported once at the start and once per chunk: far fewer than one per item.
  BOOST_TEST_MESSAGE("10000 unsized items in " << chunks - 1 << " chunks");
  BOOST_TEST(chunks - 1 < 1000U);
  BOOST_TEST(pool.map<jobs::square>(xs | std::views::filter(odd) | std::views::take(3)) ==
                 (std::vector<int>{1, 9, 25}),
             boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE_F(clean_check, starmap_passes_each_tuple_as_the_arguments,
                       bdata::make(methods), method) {
  mproc::process_pool pool(options(method));
  std::vector<std::tuple<std::string, int, double>> calls;
  for (int i = 0; i < 30; ++i) calls.emplace_back("n" + std::to_string(i), i, i / 10.0);
  const std::vector<std::string> got = pool.starmap<jobs::label>(calls, 4);
  BOOST_REQUIRE(got.size() == 30U);
  BOOST_TEST(got[0] == "n0#0@0");
  BOOST_TEST(got[29] == "n29#29@29");
  std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
  BOOST_TEST(pool.starmap<jobs::add>(pairs) == (std::vector<int>{3, 7, 11}),
             boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE_F(clean_check, terminate_workers_fails_running_and_queued_tasks,
                       bdata::make(methods* bdata::make({false, true})), method, kill) {
  mproc::process_pool pool(options(method));
  mproc_test::gate first;
  mproc_test::gate second;
  std::vector<mproc::future<int>> fs;
  fs.push_back(pool.submit<jobs::wait_at_gate>(first.token()));
  fs.push_back(pool.submit<jobs::wait_at_gate>(second.token()));
  first.wait_until_entered();
  second.wait_until_entered();  // both workers are held for as long as the test wants
  for (int i = 0; i < 5; ++i) fs.push_back(pool.submit<jobs::square>(i));
  if (kill) {
    pool.kill_workers();
  } else {
    pool.terminate_workers();
  }
  for (auto& f : fs) BOOST_CHECK_THROW(f.get(), mproc::cancelled_error);
  BOOST_CHECK_THROW(pool.submit<jobs::square>(1), mproc::pool_closed);
  pool.shutdown();  // nothing left to wait for
}

BOOST_AUTO_TEST_CASE(thread_pool_has_the_same_futures_and_map_family) {
  mproc::thread_pool pool(2);
  std::promise<void> go;
  std::shared_future<void> opened = go.get_future().share();
  std::vector<mproc::future<int>> fs;
  fs.push_back(pool.submit([opened] {
    opened.wait();
    return 1;
  }));
  fs.push_back(pool.submit<jobs::square>(5));
  const mproc::wait_result r = mproc::wait(fs, mproc::return_when::first_completed);
  BOOST_TEST(r.done == std::vector<std::size_t>{1}, boost::test_tools::per_element());
  BOOST_CHECK_THROW(fs[0].get_for(10ms), mproc::wait_timeout);
  go.set_value();
  BOOST_TEST(fs[0].get_for(60s) == 1);

  std::vector<int> xs(1000);
  std::iota(xs.begin(), xs.end(), 0);
  auto evens = xs | std::views::filter([](int x) { return x % 2 == 0; });
  const std::vector<int> ys = pool.map<jobs::square>(evens);
  BOOST_TEST(ys.size() == 500U);
  BOOST_TEST(ys[499] == 998 * 998);
  std::size_t n = 0;
  for (long long y : pool.imap<jobs::twice>(std::views::iota(0LL))) {
    BOOST_REQUIRE(y == 2 * static_cast<long long>(n));
    if (++n == 1000) break;
  }
  std::multiset<int> unordered;
  for (int y : pool.imap_unordered<jobs::square>(xs)) unordered.insert(y);
  BOOST_TEST(unordered.size() == 1000U);
  BOOST_TEST(*unordered.rbegin() == 999 * 999);
  std::vector<std::tuple<std::string, int, double>> calls{{"a", 1, 0.5}};
  BOOST_TEST(pool.starmap<jobs::label>(calls) == std::vector<std::string>{"a#1@5"},
             boost::test_tools::per_element());
}

BOOST_DATA_TEST_CASE_F(clean_check, one_generic_function_runs_on_either_pool, bdata::make(methods),
                       method) {
  mproc::process_pool processes(options(method));
  mproc::thread_pool threads(2);
  const long long expected = 2 * (99LL * 100 * 199 / 6) + 100 * 100;
  BOOST_TEST(sum_of_squares(processes, 100) == expected);
  BOOST_TEST(sum_of_squares(threads, 100) == expected);
}

BOOST_AUTO_TEST_SUITE_END()
