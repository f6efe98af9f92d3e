// The pool's surface and its fault cases against an mpi_pool, run under mpiexec: rank 0 runs
// the Boost.Test cases, every other rank serves inside the pool's constructor. One pool per
// run (MPI starts once), so MPROC_MPI_TEST_MODE picks what this run checks:
//   basic      the surface, with 1 to 3 supervisors (ends with the shutdown cases)
//   faults     crash, throw, hang and undecodable data on the nodes' workers
//   cancel     shutdown(false, true) with tasks running on the nodes
//   initializer, mismatch   the start fails: rank 0 prints the start_error and exits 0
//   kill       rank 0 prints "serving" and keeps the nodes busy until the job is ended
#define BOOST_TEST_NO_MAIN
#define BOOST_TEST_ALTERNATIVE_INIT_API
#define BOOST_TEST_IGNORE_SIGCHLD
#include <boost/test/included/unit_test.hpp>

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

#include <boost/archive/archive_exception.hpp>
#include <boost/serialization/split_member.hpp>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string mode() {
  const char* m = std::getenv("MPROC_MPI_TEST_MODE");
  return m != nullptr ? m : "basic";
}

std::size_t job_size() {
  const char* s = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (s == nullptr) s = std::getenv("PMI_SIZE");
  return s != nullptr ? std::strtoul(s, nullptr, 10) : 0;
}

std::unique_ptr<mproc::mpi_pool> the_pool;

mproc::mpi_pool& pool() { return *the_pool; }

}  // namespace

namespace work {

int square(int x) { return x * x; }

int add(int a, int b) { return a + b; }

// The rank of the node whose worker runs this, as Open MPI tells it.
int node_rank(int) {
  const char* r = std::getenv("OMPI_COMM_WORLD_RANK");
  return r != nullptr ? std::atoi(r) : -1;
}

std::vector<char> echo(std::vector<char> v) { return v; }

int fails(int x) {
  if (x == 13) throw std::domain_error("thirteen is unlucky");
  return x;
}

int crash(int how) {
  switch (how) {
    case 0:
      std::raise(SIGSEGV);
      break;
    case 1:
      std::abort();
    case 2:
      std::raise(SIGKILL);
      break;
    default:
      std::_Exit(3);
  }
  return 0;
}

int sleep_for_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

void load_fails(int n) { throw std::runtime_error("no model file #" + std::to_string(n)); }

// An argument that encodes on rank 0 and cannot be decoded on the node.
struct undecodable {
  int value = 0;
  template <class Archive>
  void save(Archive& ar, unsigned /*version*/) const {
    ar << value;
  }
  template <class Archive>
  void load(Archive& /*ar*/, unsigned /*version*/) {
    throw boost::archive::archive_exception(boost::archive::archive_exception::input_stream_error);
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

int take_undecodable(undecodable u) { return u.value; }

#if defined(MPROC_MPI_TEST_EXTRA_TASK)
// Only in the other build: its registry has one task more.
int extra(int x) { return x; }
[[maybe_unused]] void register_extra(mproc::mpi_pool& p) { (void)p.submit<extra>(1); }
#endif

}  // namespace work

static_assert(mproc::executor<mproc::mpi_pool>, "generic code takes an mpi_pool like any pool");

namespace {

bool init_unit_test() { return true; }

bool in_mode(const char* m) { return mode() == m; }

struct only_in {
  explicit only_in(const char* m) : wanted(m) {}
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    return mode() == wanted;
  }
  std::string wanted;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(basic, *boost::unit_test::precondition(only_in("basic")))

BOOST_AUTO_TEST_CASE(nodes_and_workers_are_those_of_the_job) {
  BOOST_TEST(pool().nodes() == job_size() - 1);
  std::size_t sum = 0;
  for (std::size_t n = 0; n < pool().nodes(); ++n) {
    BOOST_TEST(pool().workers_on(n) == 2U);
    sum += pool().workers_on(n);
  }
  BOOST_TEST(pool().workers() == sum);
  BOOST_CHECK_THROW((void)pool().workers_on(pool().nodes()), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(submit_returns_the_result) {
  BOOST_TEST(pool().submit<work::square>(7).get() == 49);
  BOOST_TEST(pool().submit<work::add>(2, 40).get() == 42);
}

BOOST_AUTO_TEST_CASE(many_submits_each_get_their_own_result_and_reach_every_node) {
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 2000; ++i) fs.push_back(pool().submit<work::square>(i));
  for (int i = 0; i < 2000; ++i) BOOST_TEST(fs[static_cast<std::size_t>(i)].get() == i * i);
  // Tasks that take a while, so that every node gets some.
  std::set<int> ranks;
  std::vector<mproc::future<int>> slow;
  for (std::size_t i = 0; i < 8 * pool().workers(); ++i) {
    slow.push_back(pool().submit<work::sleep_for_ms>(20));
  }
  for (auto& f : slow) f.get();
  for (int r : pool().map<work::node_rank>(std::vector<int>(400, 0), 1)) ranks.insert(r);
  BOOST_TEST(ranks.size() == pool().nodes());
  BOOST_TEST(*ranks.begin() == 1);
}

BOOST_AUTO_TEST_CASE(map_keeps_input_order_with_any_chunksize_and_reports_progress) {
  std::vector<int> xs(10000);
  for (int i = 0; i < 10000; ++i) xs[static_cast<std::size_t>(i)] = i;
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{5000}}) {
    std::size_t last_done = 0, last_total = 0;
    const auto ys = pool().map<work::square>(xs, chunk, [&](std::size_t done, std::size_t total) {
      BOOST_TEST(done >= last_done);
      last_done = done;
      last_total = total;
    });
    BOOST_TEST_REQUIRE(ys.size() == xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i) BOOST_TEST(ys[i] == xs[i] * xs[i]);
    BOOST_TEST(last_done == xs.size());
    BOOST_TEST(last_total == xs.size());
  }
}

BOOST_AUTO_TEST_CASE(starmap_spreads_tuples_over_the_arguments) {
  std::vector<std::tuple<int, int>> pairs;
  for (int i = 0; i < 500; ++i) pairs.emplace_back(i, 2 * i);
  const auto sums = pool().starmap<work::add>(pairs);
  for (int i = 0; i < 500; ++i) BOOST_TEST(sums[static_cast<std::size_t>(i)] == 3 * i);
}

BOOST_AUTO_TEST_CASE(imap_reads_a_lazy_range_and_yields_in_order_or_as_completed) {
  auto squares = pool().imap<work::square>(std::views::iota(0, 3000), 16);
  int i = 0;
  for (int y : squares) {
    BOOST_TEST(y == i * i);
    ++i;
  }
  BOOST_TEST(i == 3000);
  std::multiset<int> got;
  for (int y : pool().imap_unordered<work::square>(std::views::iota(0, 1000))) got.insert(y);
  std::multiset<int> want;
  for (int k = 0; k < 1000; ++k) want.insert(k * k);
  BOOST_TEST((got == want));
}

BOOST_AUTO_TEST_CASE(as_completed_wait_and_callbacks_see_every_future) {
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 6; ++i) fs.push_back(pool().submit<work::sleep_for_ms>(10 * i));
  std::atomic<int> called{0};
  for (auto& f : fs) f.add_done_callback([&called] { ++called; });
  const mproc::wait_result first = mproc::wait(fs, mproc::return_when::first_completed);
  BOOST_TEST(!first.done.empty());
  const mproc::wait_result all = mproc::wait(fs);
  BOOST_TEST(all.done.size() == 6U);
  BOOST_TEST(all.not_done.empty());
  std::set<int> seen;
  for (auto& f : mproc::as_completed(fs)) seen.insert(f.get());
  BOOST_TEST(seen.size() == 6U);
  BOOST_TEST(called.load() == 6);
}

BOOST_AUTO_TEST_CASE(a_task_that_throws_fails_alone_with_its_type_and_message) {
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 30; ++i) fs.push_back(pool().submit<work::fails>(i));
  for (int i = 0; i < 30; ++i) {
    if (i == 13) {
      try {
        fs[13].get();
        BOOST_FAIL("no error");
      } catch (const mproc::remote_error& e) {
        BOOST_TEST(e.type() == "std::domain_error");
        BOOST_TEST(e.message() == "thirteen is unlucky");
      }
    } else {
      BOOST_TEST(fs[static_cast<std::size_t>(i)].get() == i);
    }
  }
  BOOST_CHECK_THROW(pool().map<work::fails>(std::vector<int>{1, 13, 2}), mproc::remote_error);
}

BOOST_AUTO_TEST_CASE(large_arguments_and_results_cross_whole_alone_or_batched) {
  std::vector<char> big(std::size_t{40} << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  BOOST_TEST((pool().submit<work::echo>(big).get() == big));
  // Results over a message's batch size that complete together travel in several messages.
  std::vector<char> part(std::size_t{3} << 20, 'x');
  std::vector<mproc::future<std::vector<char>>> fs;
  for (int i = 0; i < 12; ++i) {
    part[0] = static_cast<char>(i);
    fs.push_back(pool().submit<work::echo>(part));
  }
  for (int i = 0; i < 12; ++i) {
    const std::vector<char> got = fs[static_cast<std::size_t>(i)].get();
    BOOST_TEST_REQUIRE(got.size() == part.size());
    BOOST_TEST(got[0] == static_cast<char>(i));
    BOOST_TEST(got.back() == 'x');
  }
}

// Last in this suite: the pool is closed after it.
BOOST_AUTO_TEST_CASE(shutdown_waits_for_every_task_then_refuses_new_ones) {
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(pool().submit<work::sleep_for_ms>(5));
  pool().shutdown();
  for (auto& f : fs) BOOST_TEST(f.ready());
  for (auto& f : fs) BOOST_TEST(f.get() == 5);
  BOOST_CHECK_THROW(pool().submit<work::square>(1), mproc::pool_closed);
  pool().shutdown();  // idempotent
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(faults, *boost::unit_test::precondition(only_in("faults")))

BOOST_AUTO_TEST_CASE(a_worker_that_crashes_fails_only_its_task) {
  for (int how = 0; how < 4; ++how) {
    std::vector<mproc::future<int>> fs;
    for (int i = 0; i < 10; ++i) fs.push_back(pool().submit<work::square>(i));
    auto crashed = pool().submit<work::crash>(how);
    for (int i = 10; i < 20; ++i) fs.push_back(pool().submit<work::square>(i));
    try {
      crashed.get();
      BOOST_FAIL("no error");
    } catch (const mproc::worker_crashed& e) {
      BOOST_TEST_MESSAGE(e.what());
      BOOST_TEST(e.pid() > 0);
      if (how == 3) {
        BOOST_TEST(e.exit_code().value_or(-1) == 3);
      } else {
        BOOST_TEST(e.signal().value_or(-1) == (how == 0 ? SIGSEGV : how == 1 ? SIGABRT : SIGKILL));
      }
      BOOST_TEST(std::string(e.what()).find("work::crash") != std::string::npos);
    }
    for (int i = 0; i < 20; ++i) BOOST_TEST(fs[static_cast<std::size_t>(i)].get() == i * i);
  }
}

BOOST_AUTO_TEST_CASE(a_task_past_its_timeout_fails_alone_with_task_timeout) {
  auto hung = pool().submit<work::sleep_for_ms>(60000);
  auto fine = pool().submit<work::square>(3);
  try {
    hung.get();
    BOOST_FAIL("no error");
  } catch (const mproc::task_timeout& e) {
    BOOST_TEST(e.limit() == std::chrono::milliseconds(1000));
  }
  BOOST_TEST(fine.get() == 9);
}

BOOST_AUTO_TEST_CASE(an_argument_the_node_cannot_decode_fails_alone) {
  auto bad = pool().submit<work::take_undecodable>(work::undecodable{5});
  auto fine = pool().submit<work::square>(4);
  BOOST_CHECK_THROW(bad.get(), mproc::serialization_error);
  BOOST_TEST(fine.get() == 16);
}

BOOST_AUTO_TEST_CASE(after_the_faults_every_node_still_serves) {
  std::vector<int> xs(2000, 3);
  for (int y : pool().map<work::square>(xs, 10)) BOOST_TEST(y == 9);
  std::set<int> ranks;
  for (int r : pool().map<work::node_rank>(std::vector<int>(200, 0), 1)) ranks.insert(r);
  BOOST_TEST(ranks.size() == pool().nodes());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancel, *boost::unit_test::precondition(only_in("cancel")))

BOOST_AUTO_TEST_CASE(cancelling_shutdown_ends_running_and_queued_tasks) {
  std::vector<mproc::future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(pool().submit<work::sleep_for_ms>(60000));
  pool().shutdown(true, true);
  for (auto& f : fs) {
    BOOST_TEST(f.ready());
    BOOST_CHECK_THROW(f.get(), mproc::cancelled_error);
  }
  BOOST_CHECK_THROW(pool().submit<work::square>(1), mproc::pool_closed);
}

BOOST_AUTO_TEST_SUITE_END()

int main(int argc, char** argv) {
  mproc::init(argc, argv);  // a spawned worker of a node stops here
  mproc::mpi_options o;
  o.workers_per_node = 2;
  o.local.start = mproc::start_method::forkserver;
  if (const char* m = std::getenv("MPROC_MPI_TEST_START")) {
    o.local.start = mproc::parse_start_method(m);
  }
  if (in_mode("faults")) o.local.task_timeout = std::chrono::milliseconds(1000);
  if (in_mode("cancel")) o.workers_per_node = 1;
  if (in_mode("initializer")) o.local.initializer = mproc::bind<work::load_fails>(7);
  try {
    the_pool = std::make_unique<mproc::mpi_pool>(argc, argv, o);
  } catch (const mproc::start_error& e) {
    std::printf("start_error: %s\n", e.what());
    return in_mode("initializer") || in_mode("mismatch") ? 0 : 1;
  }
  if (in_mode("initializer") || in_mode("mismatch")) {
    std::printf("FAILED: the pool started\n");
    return 1;
  }
  if (in_mode("kill")) {
    std::vector<mproc::future<int>> fs;
    for (int i = 0; i < 1000; ++i) fs.push_back(pool().submit<work::sleep_for_ms>(100));
    std::printf("serving\n");
    std::fflush(stdout);
    for (auto& f : fs) f.get();
    std::printf("FAILED: the job was not ended\n");
    return 1;
  }
  const int failed = boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
  the_pool.reset();
  return failed;
}
