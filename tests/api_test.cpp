// The parts of the API that need no worker: start method names, options, error types.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

BOOST_AUTO_TEST_SUITE(api)

BOOST_AUTO_TEST_CASE(parse_start_method_accepts_every_documented_name) {
  using mproc::start_method;
  BOOST_TEST((mproc::parse_start_method("auto") == start_method::automatic));
  BOOST_TEST((mproc::parse_start_method("automatic") == start_method::automatic));
  BOOST_TEST((mproc::parse_start_method("fork") == start_method::fork));
  BOOST_TEST((mproc::parse_start_method("spawn") == start_method::spawn));
  BOOST_TEST((mproc::parse_start_method("forkserver") == start_method::forkserver));
  for (const start_method m : {start_method::automatic, start_method::fork, start_method::spawn,
                               start_method::forkserver}) {
    BOOST_TEST((mproc::parse_start_method(mproc::to_string(m)) == m));
  }
}

BOOST_AUTO_TEST_CASE(parse_start_method_rejects_anything_else_listing_the_valid_names) {
  for (const char* bad : {"", "Fork", "spawn ", "threads", "fork,spawn"}) {
    try {
      mproc::parse_start_method(bad);
      BOOST_FAIL("accepted '" << bad << "'");
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      for (const char* name : {"auto", "fork", "spawn", "forkserver"}) {
        BOOST_TEST(what.find(name) != std::string::npos);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(posix_has_fork_and_spawn_and_windows_spawn_only) {
  const auto methods = mproc::available_start_methods();
  const auto has = [&](mproc::start_method m) {
    return std::find(methods.begin(), methods.end(), m) != methods.end();
  };
  BOOST_TEST(has(mproc::start_method::spawn));
  BOOST_TEST(!has(mproc::start_method::automatic));
  BOOST_TEST(has(mproc::start_method::fork) == !mproc_test::on_windows);
  BOOST_TEST(has(mproc::start_method::forkserver) == !mproc_test::on_windows);
  if (!mproc_test::on_windows) return;
  // Where a method does not exist, asking for it says why and what to use.
  for (const mproc::start_method m : {mproc::start_method::fork, mproc::start_method::forkserver}) {
    try {
      mproc::process_pool pool(mproc_test::options(m));
      BOOST_FAIL("a pool started with " << mproc::to_string(m));
    } catch (const mproc::start_error& e) {
      BOOST_TEST(std::string(e.what()).find("use spawn") != std::string::npos, e.what());
    }
  }
}

BOOST_AUTO_TEST_CASE(parse_pool_options_reads_method_and_workers) {
  const char* argv[] = {"prog", "--workers=3", "input.txt", "--start-method=spawn"};
  const mproc::pool_options o = mproc::parse_pool_options(4, argv);
  BOOST_TEST(o.workers == 3U);
  BOOST_TEST((o.start == mproc::start_method::spawn));

  mproc::pool_options base;
  base.workers = 7;
  const char* none[] = {"prog"};
  BOOST_TEST(mproc::parse_pool_options(1, none, base).workers == 7U);

  const char* bad_workers[] = {"prog", "--workers=two"};
  BOOST_CHECK_THROW(mproc::parse_pool_options(2, bad_workers), std::invalid_argument);
  const char* empty_workers[] = {"prog", "--workers="};
  BOOST_CHECK_THROW(mproc::parse_pool_options(2, empty_workers), std::invalid_argument);
  const char* huge_workers[] = {"prog", "--workers=18446744073709551615"};
  try {
    mproc::parse_pool_options(2, huge_workers);
    BOOST_FAIL("--workers=2^64-1 was accepted");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("at most 4096") != std::string::npos, e.what());
  }
  const char* most_workers[] = {"prog", "--workers=4096"};
  BOOST_TEST(mproc::parse_pool_options(2, most_workers).workers == mproc::max_workers);
  const char* bad_method[] = {"prog", "--start-method=threads"};
  BOOST_CHECK_THROW(mproc::parse_pool_options(2, bad_method), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(errors_carry_their_fields_and_share_one_base) {
  const mproc::worker_crashed crashed(1234, std::nullopt, 11, "ns::work");
  BOOST_TEST(crashed.pid() == 1234);
  BOOST_TEST((crashed.signal() == 11));
  BOOST_TEST(!crashed.exit_code().has_value());
  BOOST_TEST(std::string(crashed.what()).find(mproc_test::on_windows ? "signal 11" : "SIGSEGV") !=
             std::string::npos);
  BOOST_TEST(std::string(crashed.what()).find("ns::work") != std::string::npos);

  // A code the system gives a crashed process says what it means (Windows' NTSTATUS).
  const mproc::worker_crashed faulted(1234, static_cast<int>(0xC0000005), std::nullopt, "ns::work");
  BOOST_TEST((std::string(faulted.what()).find("0xC0000005 access violation") !=
              std::string::npos) == mproc_test::on_windows);

  const mproc::worker_crashed exited(99, 3, std::nullopt, "ns::work");
  BOOST_TEST(std::string(exited.what()).find("exited with code 3") != std::string::npos);

  const mproc::remote_error remote("std::out_of_range", "index 9");
  BOOST_TEST(remote.type() == "std::out_of_range");
  BOOST_TEST(remote.message() == "index 9");

  const mproc::task_timeout timeout(std::chrono::milliseconds(250), "ns::slow");
  BOOST_TEST(timeout.limit() == std::chrono::milliseconds(250));

  const mproc::error* as_base[] = {&crashed, &remote, &timeout};
  for (const mproc::error* e : as_base) BOOST_TEST(dynamic_cast<const std::runtime_error*>(e));
}

BOOST_AUTO_TEST_SUITE_END()
