// The fault matrix: every way a worker can fail, at every stage of a task, under every start
// method. Each cell checks the precise error on the affected future, every other result, that
// the pool still works, and (in the fixture) that no process and no segment is left.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/serialization/split_member.hpp>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if !defined(_WIN32)
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace bdata = boost::unit_test::data;

namespace faults {

enum class kind { segv, abort, terminate, sigkill, exit3, exit0, throws };
enum class stage { construct, decode, run, encode };

constexpr std::array kinds = {kind::segv,  kind::abort, kind::terminate, kind::sigkill,
                              kind::exit3, kind::exit0, kind::throws};
constexpr std::array stages = {stage::construct, stage::decode, stage::run, stage::encode};

const char* name(kind k) {
  static constexpr const char* names[] = {"segv",  "abort", "terminate", "sigkill",
                                          "exit3", "exit0", "throws"};
  return names[static_cast<int>(k)];
}
const char* name(stage s) {
  static constexpr const char* names[] = {"construct", "decode", "run", "encode"};
  return names[static_cast<int>(s)];
}

// Fails the way `k` says, for real: signals are raised, exits exit.
void trigger(kind k) {
  switch (k) {
    case kind::segv:
      mproc_test::crash_with_access_fault();
    case kind::abort:
      std::abort();
    case kind::terminate:
      std::terminate();
    case kind::sigkill:
      mproc_test::kill_self();  // what the kernel's out-of-memory killer does
    case kind::exit3:
      std::exit(3);
    case kind::exit0:
      std::_Exit(0);  // a clean exit in the middle of a task
    case kind::throws:
      throw std::runtime_error("injected failure");
  }
}

// An argument that fails while the worker builds it (construct) or decodes it (decode).
template <kind K, stage S>
struct fault_arg {
  int value = 0;
  fault_arg() {
    if constexpr (S == stage::construct) {
      if (mproc::is_worker()) trigger(K);
    }
  }
  explicit fault_arg(int v) : value(v) {}
  template <class Archive>
  void save(Archive& ar, const unsigned int /*version*/) const {
    ar << value;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int /*version*/) {
    ar >> value;
    if constexpr (S == stage::decode) trigger(K);
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

// A result that fails while the worker encodes it.
template <kind K, stage S>
struct fault_result {
  int value = 0;
  template <class Archive>
  void save(Archive& ar, const unsigned int /*version*/) const {
    if constexpr (S == stage::encode) trigger(K);
    ar << value;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int /*version*/) {
    ar >> value;
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

template <kind K, stage S>
fault_result<K, S> faulty(fault_arg<K, S> a) {
  if constexpr (S == stage::run) trigger(K);
  return {a.value * 2};
}

int square(int x) { return x * x; }

std::vector<char> too_large_to_allocate() {
  // 4 EiB: beyond any address space, so it fails at once (32 TiB took Wine 36 s to refuse).
  return std::vector<char>(std::size_t{1} << 62);
}

// An object whose destructor throws, destroyed when the worker calls std::exit.
struct throws_when_destroyed {
  int touched = 0;
  ~throws_when_destroyed() noexcept(false) { throw std::runtime_error("from a destructor"); }
};
int exit_through_a_throwing_destructor() {
  static throws_when_destroyed object;
  object.touched = 1;
  std::exit(0);
}

// The soak test's fault plan: a fixed pseudo-random outcome for each task number.
enum class plan { ok, crash, hang };
plan plan_for(int i) {
  std::uint64_t z = static_cast<std::uint64_t>(i) + 0x9e3779b97f4a7c15ULL;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  const std::uint64_t r = (z ^ (z >> 31)) % 100;
  return r < 5 ? plan::crash : r < 7 ? plan::hang : plan::ok;
}

int soak_task(int i) {
  switch (plan_for(i)) {
    case plan::crash:
      std::abort();
    case plan::hang:
      mproc_test::hang_forever();
    case plan::ok:
      break;
  }
  return 2 * i;
}

// The first task numbers the soak plan makes crash and hang.
int first_crashing_task() {
  int i = 0;
  while (plan_for(i) != plan::crash) ++i;
  return i;
}
int first_hanging_task() {
  int i = 0;
  while (plan_for(i) != plan::hang) ++i;
  return i;
}

struct expectation {
  enum { crashed, serialization, remote } error;
  mproc_test::crash_report report;
};

expectation expected(kind k, stage s) {
  switch (k) {
    case kind::segv:
      return {expectation::crashed, mproc_test::access_fault_report()};
    case kind::abort:
    case kind::terminate:
      return {expectation::crashed, mproc_test::abort_report()};
    case kind::sigkill:
      return {expectation::crashed, mproc_test::kill_report()};
    case kind::exit3:
      return {expectation::crashed, {std::nullopt, 3, "exited with code 3"}};
    case kind::exit0:
      return {expectation::crashed, {std::nullopt, 0, "exited with code 0"}};
    case kind::throws:
      break;
  }
  return {s == stage::run ? expectation::remote : expectation::serialization, {}};
}

template <kind K, stage S>
void run_cell(mproc::start_method method) {
  mproc::process_pool pool(mproc_test::options(method, 2));
  std::vector<mproc::future<int>> before, after;
  for (int i = 0; i < 3; ++i) before.push_back(pool.submit<square>(i));
  mproc::future<fault_result<K, S>> victim = pool.submit<faulty<K, S>>(fault_arg<K, S>(21));
  for (int i = 3; i < 6; ++i) after.push_back(pool.submit<square>(i));

  const expectation e = expected(K, S);
  try {
    victim.get();
    BOOST_FAIL("the faulty task succeeded");
  } catch (const mproc::worker_crashed& x) {
    BOOST_TEST(e.error == expectation::crashed, "unexpected worker_crashed: " << x.what());
    mproc_test::check_report(x, e.report);
    BOOST_TEST(x.pid() > 0);
    BOOST_TEST(std::string(x.what()).find("faulty") != std::string::npos);
  } catch (const mproc::serialization_error& x) {
    BOOST_TEST(e.error == expectation::serialization,
               "unexpected serialization_error: " << x.what());
    BOOST_TEST(std::string(x.what()).find("injected failure") != std::string::npos);
  } catch (const mproc::remote_error& x) {
    BOOST_TEST(e.error == expectation::remote, "unexpected remote_error: " << x.what());
    BOOST_TEST(x.type() == "std::runtime_error");
    BOOST_TEST(x.message() == "injected failure");
  }
  for (int i = 0; i < 3; ++i) BOOST_TEST(before[static_cast<std::size_t>(i)].get() == i * i);
  for (int i = 3; i < 6; ++i) BOOST_TEST(after[static_cast<std::size_t>(i - 3)].get() == i * i);
  // The pool still takes work, on as many workers as before.
  const std::vector<int> ys = pool.map<square>(std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}, 1);
  BOOST_TEST((ys == std::vector<int>{1, 4, 9, 16, 25, 36, 49, 64}));
  BOOST_TEST(pool.workers() == 2U);
}

using cell = void (*)(mproc::start_method);

template <std::size_t... K, std::size_t... S>
std::map<std::pair<kind, stage>, cell> make_cells(std::index_sequence<K...>,
                                                  std::index_sequence<S...>) {
  std::map<std::pair<kind, stage>, cell> cells;
  (
      [&]<std::size_t k>() {
        ((cells[{kinds[k], stages[S]}] = &run_cell<kinds[k], stages[S]>), ...);
      }.template operator()<K>(),
      ...);
  return cells;
}

const std::map<std::pair<kind, stage>, cell>& cells() {
  static const auto table = make_cells(std::make_index_sequence<kinds.size()>{},
                                       std::make_index_sequence<stages.size()>{});
  return table;
}

}  // namespace faults

namespace faults {
inline std::ostream& operator<<(std::ostream& os, kind k) { return os << name(k); }
inline std::ostream& operator<<(std::ostream& os, stage s) { return os << name(s); }
}  // namespace faults

BOOST_AUTO_TEST_SUITE(faults)

BOOST_DATA_TEST_CASE_F(
    mproc_test::clean_check, each_failure_fails_only_its_task,
    bdata::make(mproc_test::methods_under_test()) *
        bdata::make(std::vector<faults::kind>(faults::kinds.begin(), faults::kinds.end())) *
        bdata::make(std::vector<faults::stage>(faults::stages.begin(), faults::stages.end())),
    method, kind, stage) {
  BOOST_TEST_MESSAGE("cell: " << method << " x " << kind << " x " << stage);
  faults::cells().at({kind, stage})(method);
}

BOOST_TEST_DECORATOR(*boost::unit_test::precondition(mproc_test::posix_only{
    "fork and forkserver have a zygote"}))
BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, a_killed_zygote_is_replaced_and_work_goes_on,
                       bdata::make(mproc_test::under_tsan || mproc_test::on_windows
                                       ? std::vector{mproc::start_method::forkserver}
                                       : std::vector{mproc::start_method::fork,
                                                     mproc::start_method::forkserver}),
                       method) {
  // One worker: the task after the crash can only run once its replacement has started.
  mproc::process_pool pool(mproc_test::options(method, 1));
  BOOST_TEST(pool.submit<faults::square>(3).get() == 9);
  // Workers are the zygote's children, so the zygote is this process's only child.
  const std::vector<int> zygote = mproc_test::direct_children();
  BOOST_TEST_REQUIRE(zygote.size() == 1U);
#if !defined(_WIN32)
  ::kill(zygote[0], SIGKILL);
#endif
  // A crash needs a replacement worker: it comes from a new zygote.
  constexpr auto crash = &faults::faulty<faults::kind::abort, faults::stage::run>;
  using crash_arg = faults::fault_arg<faults::kind::abort, faults::stage::run>;
  BOOST_CHECK_THROW(pool.submit<crash>(crash_arg(1)).get(), mproc::worker_crashed);
  const std::vector<int> ys = pool.map<faults::square>(std::vector<int>{1, 2, 3, 4}, 1);
  BOOST_TEST((ys == std::vector<int>{1, 4, 9, 16}));
  const std::vector<int> now = mproc_test::direct_children();
  BOOST_TEST((now.size() == 1U && now[0] != zygote[0]));
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, soak_every_future_resolves_as_planned,
                       bdata::make(mproc_test::under_tsan || mproc_test::on_windows
                                       ? std::vector{mproc::start_method::spawn}
                                       : std::vector{mproc::start_method::fork,
                                                     mproc::start_method::spawn}),
                       method) {
  constexpr int tasks = 2000;
  mproc::pool_options o = mproc_test::options(method, 4);
  o.task_timeout = std::chrono::milliseconds(300);
  mproc::process_pool pool(o);
  std::vector<mproc::future<int>> fs;
  int planned_crashes = 0;
  int planned_hangs = 0;
  for (int i = 0; i < tasks; ++i) {
    fs.push_back(pool.submit<faults::soak_task>(i));
    planned_crashes += faults::plan_for(i) == faults::plan::crash ? 1 : 0;
    planned_hangs += faults::plan_for(i) == faults::plan::hang ? 1 : 0;
  }
  // The test's own deadline: far above the expected few seconds, and it says where it stood.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  int ok = 0;
  int crashed = 0;
  int timed_out = 0;
  int wrong = 0;
  for (int i = 0; i < tasks; ++i) {
    mproc::future<int>& f = fs[static_cast<std::size_t>(i)];
    if (f.wait_for(deadline - std::chrono::steady_clock::now()) != std::future_status::ready) {
      int pending = 0;
      for (const auto& g : fs) pending += g.valid() && !g.ready() ? 1 : 0;
      BOOST_FAIL("soak deadline passed at task " << i << ": " << pending << " futures pending; "
                                                 << ok << " ok, " << crashed << " crashed, "
                                                 << timed_out << " timed out so far");
    }
    try {
      wrong += f.get() == 2 * i && faults::plan_for(i) == faults::plan::ok ? 0 : 1;
      ++ok;
    } catch (const mproc::worker_crashed& e) {
      wrong += faults::plan_for(i) == faults::plan::crash &&
                       mproc_test::reports(e, mproc_test::abort_report())
                   ? 0
                   : 1;
      ++crashed;
    } catch (const mproc::task_timeout&) {
      wrong += faults::plan_for(i) == faults::plan::hang ? 0 : 1;
      ++timed_out;
    }
  }
  BOOST_TEST_MESSAGE("soak (" << method << "): " << ok << " ok, " << crashed << " crashed, "
                              << timed_out << " timed out");
  BOOST_TEST(wrong == 0);
  BOOST_TEST(crashed == planned_crashes);
  BOOST_TEST(timed_out == planned_hangs);
  BOOST_TEST(ok == tasks - planned_crashes - planned_hangs);
}

// Short tasks are sent to workers several at a time: a crash or a hang among them fails that
// one task only, and the ones sent behind it run on.
BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, a_failure_inside_a_pipeline_fails_only_its_task,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::pool_options o = mproc_test::options(method, 2);
  o.task_timeout = std::chrono::seconds(2);
  mproc::process_pool pool(o);
  // Warm up: the pool learns the tasks are short and starts sending them ahead.
  BOOST_TEST(pool.map<faults::square>(std::vector<int>(2000, 3), 1).back() == 9);
  constexpr auto crash = &faults::faulty<faults::kind::abort, faults::stage::run>;
  using crash_arg = faults::fault_arg<faults::kind::abort, faults::stage::run>;
  for (const bool hang : {false, true}) {
    std::vector<mproc::future<int>> before, after;
    for (int i = 0; i < 300; ++i) before.push_back(pool.submit<faults::square>(i));
    auto bad = hang ? pool.submit<faults::soak_task>(faults::first_hanging_task())
                    : pool.submit<faults::soak_task>(faults::first_crashing_task());
    auto bad_crash = pool.submit<crash>(crash_arg(1));
    for (int i = 0; i < 300; ++i) after.push_back(pool.submit<faults::square>(i));
    if (hang) {
      BOOST_CHECK_THROW(bad.get(), mproc::task_timeout);
    } else {
      BOOST_CHECK_THROW(bad.get(), mproc::worker_crashed);
    }
    BOOST_CHECK_THROW(bad_crash.get(), mproc::worker_crashed);
    for (int i = 0; i < 300; ++i) {
      BOOST_TEST(before[static_cast<std::size_t>(i)].get() == i * i);
      BOOST_TEST(after[static_cast<std::size_t>(i)].get() == i * i);
    }
  }
  BOOST_TEST(pool.workers() == 2U);
}

BOOST_FIXTURE_TEST_CASE(too_many_restarts_stop_the_pool_with_the_cause, mproc_test::clean_check) {
  // forkserver where there is one: replacements come from the server.
  mproc::pool_options o = mproc_test::options(mproc_test::methods_under_test().back(), 1);
  o.max_restarts_per_minute = 2;
  mproc::process_pool pool(o);
  constexpr auto crash = &faults::faulty<faults::kind::abort, faults::stage::run>;
  using crash_arg = faults::fault_arg<faults::kind::abort, faults::stage::run>;
  BOOST_CHECK_THROW(pool.submit<crash>(crash_arg(1)).get(), mproc::worker_crashed);  // restart 1
  BOOST_CHECK_THROW(pool.submit<crash>(crash_arg(2)).get(), mproc::worker_crashed);  // restart 2
  auto third = pool.submit<crash>(crash_arg(3));
  auto queued = pool.submit<faults::square>(4);
  BOOST_CHECK_THROW(third.get(), mproc::worker_crashed);  // its replacement is one too many
  try {
    queued.get();
    BOOST_FAIL("a task queued after the limit ran");
  } catch (const mproc::start_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("max_restarts_per_minute") != std::string::npos);
    BOOST_TEST(what.find(mproc_test::abort_report().name) != std::string::npos);
  }
  BOOST_CHECK_THROW(pool.submit<faults::square>(5), mproc::start_error);
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, a_result_too_large_for_memory_fails_its_task,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::process_pool pool(mproc_test::options(method, 2));
  try {
    pool.submit<faults::too_large_to_allocate>().get();
    BOOST_FAIL("a 4 EiB result was allocated");
  } catch (const mproc::remote_error& e) {
    BOOST_TEST(!mproc_test::sanitized_allocator);
    BOOST_TEST(e.type() == "std::bad_alloc");
  } catch (const mproc::worker_crashed& e) {
    // A sanitizer's operator new cannot throw: it reports and ends the process.
    BOOST_TEST(mproc_test::sanitized_allocator);
    BOOST_TEST(e.exit_code().has_value());
  }
  BOOST_TEST(pool.submit<faults::square>(7).get() == 49);
}

// std::exit runs static destructors; one that throws either escapes exit (glibc lets it) and
// reaches the task's caller, or ends in std::terminate. Either way that task alone fails, with
// an error that says which.
BOOST_DATA_TEST_CASE_F(mproc_test::clean_check,
                       an_exception_from_a_destructor_at_exit_fails_its_task,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::process_pool pool(mproc_test::options(method, 2));
  try {
    pool.submit<faults::exit_through_a_throwing_destructor>().get();
    BOOST_FAIL("the task returned");
  } catch (const mproc::remote_error& e) {
    BOOST_TEST(e.message() == "from a destructor");
  } catch (const mproc::worker_crashed& e) {
    BOOST_TEST(mproc_test::reports(e, mproc_test::abort_report()), e.what());
  }
  BOOST_TEST(pool.map<faults::square>(std::vector<int>{8, 9}, 1) == std::vector<int>({64, 81}));
}

BOOST_FIXTURE_TEST_CASE(the_applications_sigchld_handler_is_left_alone, mproc_test::clean_check,
                        *boost::unit_test::precondition(mproc_test::posix_only{"SIGCHLD"})) {
#if !defined(_WIN32)
  struct sigaction mine {};
  mine.sa_handler = [](int) {};
  sigemptyset(&mine.sa_mask);
  struct sigaction before {};
  BOOST_TEST_REQUIRE(::sigaction(SIGCHLD, &mine, &before) == 0);
  {
    mproc::process_pool pool(mproc_test::options(mproc_test::methods_under_test().front(), 2));
    constexpr auto crash = &faults::faulty<faults::kind::abort, faults::stage::run>;
    using crash_arg = faults::fault_arg<faults::kind::abort, faults::stage::run>;
    BOOST_CHECK_THROW(pool.submit<crash>(crash_arg(1)).get(), mproc::worker_crashed);
    BOOST_TEST(pool.submit<faults::square>(2).get() == 4);
  }
  struct sigaction after {};
  ::sigaction(SIGCHLD, &before, &after);
  BOOST_TEST((after.sa_handler == mine.sa_handler));
#endif
}

BOOST_FIXTURE_TEST_CASE(a_segment_orphaned_by_a_killed_process_is_removed, mproc_test::clean_check,
                        *boost::unit_test::precondition(mproc_test::posix_only{
                            "a Windows section vanishes with its last handle, so none is "
                            "orphaned"})) {
#if !defined(_WIN32)
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);  // a pid that no longer exists
  struct stat ns {};
  BOOST_TEST_REQUIRE(::stat("/proc/self/ns/pid", &ns) == 0);
  // Named as this pid namespace's segments are: "mproc-<pid>-<namespace>-<start time>-...".
  const std::string orphan = "/dev/shm/mproc-" + std::to_string(gone) + "-" +
                             std::to_string(ns.st_ino) + "-1-0123456789abcdef01234567";
  { std::ofstream(orphan) << "left by a SIGKILL"; }
  // Removed by this test whatever happens, so that a failure here fails nothing else.
  struct remover {
    std::string path;
    ~remover() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  } cleanup{orphan};
  BOOST_TEST_REQUIRE(std::filesystem::exists(orphan));
  bool swept = false;
  {
    mproc::process_pool pool(mproc_test::options(mproc_test::methods_under_test().front(), 1));
    swept = !std::filesystem::exists(orphan);
  }
  BOOST_TEST(swept);
#endif
}

namespace churn {

volatile int sink = 0;

void* walk_b(std::uint64_t path, int depth);

// Allocates at the end of a path of calls chosen by `path`: 2^22 call stacks, each new to
// ASan, which records every new one under its stack depot's lock. A child process that
// allocated between fork and exec would hang on that lock while another thread held it.
[[gnu::noinline]] void* walk_a(std::uint64_t path, int depth) {
  void* p = depth == 0
                ? ::operator new(16)
                : ((path & 1) != 0 ? walk_a(path >> 1, depth - 1) : walk_b(path >> 1, depth - 1));
  sink = sink + 1;  // no tail call: every level stays on the stack
  return p;
}

[[gnu::noinline]] void* walk_b(std::uint64_t path, int depth) {
  void* p = depth == 0
                ? ::operator new(16)
                : ((path & 1) != 0 ? walk_b(path >> 1, depth - 1) : walk_a(path >> 1, depth - 1));
  sink = sink + 1;
  return p;
}

int noop(int x) { return x; }

}  // namespace churn

BOOST_FIXTURE_TEST_CASE(five_hundred_spawns_while_threads_allocate_from_new_stacks,
                        mproc_test::clean_check,
                        *boost::unit_test::precondition(mproc_test::not_under_tsan()) *
                            boost::unit_test::precondition(mproc_test::posix_only{
                                "the hazard is a POSIX child allocating between fork and "
                                "exec"})) {
  std::atomic<bool> done{false};
  std::vector<std::thread> churners;
  for (unsigned t = 0; t < 4; ++t) {
    churners.emplace_back([&done, t] {
      std::uint64_t path = 0x9e3779b97f4a7c15ULL * (t + 1);
      while (!done.load(std::memory_order_relaxed)) {
        path = path * 6364136223846793005ULL + 1442695040888963407ULL;
        ::operator delete(churn::walk_a(path >> 20, 22));
      }
    });
  }
  mproc::pool_options o = mproc_test::options(mproc::start_method::spawn, 2);
  o.max_tasks_per_worker = 1;  // every task in a new worker
  int ran = 0;
  {
    mproc::process_pool pool(o);
    std::vector<mproc::future<int>> results;
    for (int i = 0; i < 500; ++i) results.push_back(pool.submit<churn::noop>(i));
    for (int i = 0; i < 500; ++i) ran += results[static_cast<std::size_t>(i)].get() == i ? 1 : 0;
  }
  done = true;
  for (std::thread& t : churners) t.join();
  BOOST_TEST(ran == 500);
}

BOOST_AUTO_TEST_SUITE_END()
