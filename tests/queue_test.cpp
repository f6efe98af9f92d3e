// mproc::queue: order, bounds, deadlines and closing in one process; producers and consumers
// in processes and pool tasks under every start method; and participants that die holding a
// cell (ended by the queue's test hook at exactly that moment) blocking no one.

#include "support/support.hpp"

#include "queue_hook.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace bdata = boost::unit_test::data;
using mproc_test::clean_check;

namespace queued {

// Puts `count` numbers from `first` on, then returns.
void produce(mproc::queue<int> q, int first, int count) {
  for (int i = 0; i < count; ++i) q.put(first + i);
}

// Takes `count` numbers and puts their sum on `results`.
void consume(mproc::queue<int> q, int count, mproc::queue<long> results) {
  long sum = 0;
  for (int i = 0; i < count; ++i) sum += q.get();
  results.put(sum);
}

// A pool task: takes values until the queue is closed and drained; returns their sum.
long drain(mproc::queue<int> q) {
  long sum = 0;
  try {
    for (;;) sum += q.get();
  } catch (const mproc::queue_closed&) {
  }
  return sum;
}

// Puts `value`, and dies (SIGKILL) while it holds the cell, before the message is complete.
void die_while_putting(mproc::queue<std::string> q, const std::string& value) {
  mproc::detail::queue_test_hook.store([](mproc::detail::queue_moment m) {
    if (m == mproc::detail::queue_moment::put_holds_cell) mproc_test::kill_self();
  });
  q.put(value);
}

// Takes a value, and dies while it holds the cell, before the message is copied out.
void die_while_getting(mproc::queue<std::string> q) {
  mproc::detail::queue_test_hook.store([](mproc::detail::queue_moment m) {
    if (m == mproc::detail::queue_moment::get_holds_cell) mproc_test::kill_self();
  });
  (void)q.get();
}

}  // namespace queued

namespace {

const auto methods = mproc_test::methods_under_test();

}  // namespace

BOOST_AUTO_TEST_SUITE(queues)

BOOST_FIXTURE_TEST_CASE(values_come_out_in_order_and_the_bound_holds, clean_check) {
  mproc::queue<std::string> q(3);
  BOOST_TEST(q.capacity() == 3U);
  BOOST_TEST(!q.try_get().has_value());
  q.put("a");
  q.put("b");
  q.put("c");
  BOOST_TEST(!q.put_for("d", std::chrono::milliseconds(50)));  // full
  BOOST_TEST(q.get() == "a");
  BOOST_TEST(q.put_for("d", std::chrono::milliseconds(50)));
  BOOST_TEST(*q.try_get() == "b");
  BOOST_TEST(*q.get_for(std::chrono::milliseconds(10)) == "c");
  BOOST_TEST(q.get() == "d");
  const auto before = std::chrono::steady_clock::now();
  BOOST_TEST(!q.get_for(std::chrono::milliseconds(120)).has_value());
  BOOST_TEST((std::chrono::steady_clock::now() - before >= std::chrono::milliseconds(120)));
  BOOST_TEST(q.lost() == 0U);
}

BOOST_FIXTURE_TEST_CASE(a_closed_queue_is_drained_then_says_so, clean_check) {
  mproc::queue<int> q(4);
  q.put(1);
  q.put(2);
  q.close();
  BOOST_CHECK_THROW(q.put(3), mproc::queue_closed);
  BOOST_TEST(q.get() == 1);
  BOOST_TEST(q.get() == 2);
  BOOST_CHECK_THROW(q.get(), mproc::queue_closed);
  BOOST_CHECK_THROW(q.try_get(), mproc::queue_closed);
}

BOOST_FIXTURE_TEST_CASE(bad_sizes_are_clear_errors, clean_check) {
  BOOST_CHECK_THROW(mproc::queue<int>(0), std::invalid_argument);
  BOOST_CHECK_THROW(mproc::queue<int>(std::size_t{1} << 40, std::size_t{1} << 30),
                    std::length_error);
  mproc::queue<std::string> small(2, 64);
  try {
    small.put(std::string(100, 'x'));
    BOOST_FAIL("a message larger than the queue's largest was put");
  } catch (const std::length_error& e) {
    BOOST_TEST(std::string(e.what()).find("larger max_message") != std::string::npos, e.what());
  }
  mproc::queue<int> none;
  BOOST_CHECK_THROW(none.put(1), std::logic_error);
}

BOOST_DATA_TEST_CASE_F(clean_check, producers_and_consumers_in_processes_add_up,
                       bdata::make(methods), method) {
  mproc::queue<int> q(8);
  mproc::queue<long> results(4);
  std::vector<mproc::process> ps;
  for (int p = 0; p < 2; ++p) {
    ps.push_back(
        mproc::start_process<queued::produce>(mproc_test::started_by(method), q, p * 1000, 1000));
  }
  for (int c = 0; c < 2; ++c) {
    ps.push_back(
        mproc::start_process<queued::consume>(mproc_test::started_by(method), q, 1000, results));
  }
  long total = results.get() + results.get();
  for (auto& p : ps) BOOST_TEST((p.join().exit_code == 0));
  BOOST_TEST(total == 1999L * 2000 / 2);
  BOOST_TEST(!q.try_get().has_value());
}

BOOST_DATA_TEST_CASE_F(clean_check, pool_tasks_drain_a_queue_until_it_is_closed,
                       bdata::make(methods), method) {
  mproc::process_pool pool(mproc_test::options(method, 2));
  mproc::queue<int> q(16);
  auto a = pool.submit<queued::drain>(q);
  auto b = pool.submit<queued::drain>(q);
  long expected = 0;
  for (int i = 1; i <= 5000; ++i) {
    q.put(i);
    expected += i;
  }
  q.close();
  BOOST_TEST(a.get() + b.get() == expected);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_producer_that_dies_holding_a_cell_blocks_no_one,
                       bdata::make(methods), method) {
  mproc::queue<std::string> q(2);
  mproc::process dying =
      mproc::start_process<queued::die_while_putting>(mproc_test::started_by(method), q, "half");
  const mproc::process_exit e = dying.join();
  BOOST_TEST(e.describe().find(mproc_test::kill_report().name) != std::string::npos, e.describe());
  // Its cell is given back; what comes after it arrives, and nothing is counted lost.
  q.put("whole");
  BOOST_TEST(q.get() == "whole");
  q.put("next");
  q.put("and next");
  BOOST_TEST(q.get() == "next");
  BOOST_TEST(q.get() == "and next");
  BOOST_TEST(q.lost() == 0U);
}

BOOST_DATA_TEST_CASE_F(clean_check, a_consumer_that_dies_taking_a_message_is_counted_lost,
                       bdata::make(methods), method) {
  mproc::queue<std::string> q(1);
  q.put("taken by the dead");
  mproc::process dying =
      mproc::start_process<queued::die_while_getting>(mproc_test::started_by(method), q);
  dying.join();
  // The only cell is held by a dead consumer: a put waits for it to be given back.
  BOOST_TEST(q.put_for("after", std::chrono::seconds(20)));
  BOOST_TEST(q.lost() == 1U);
  BOOST_TEST(q.get() == "after");
  BOOST_TEST(!q.try_get().has_value());
}

BOOST_AUTO_TEST_SUITE_END()
