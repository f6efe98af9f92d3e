// The main of every test executable: mproc::init must run before Boost.Test, or each spawned
// worker would run the whole test suite again.
#define BOOST_TEST_NO_MAIN
#define BOOST_TEST_ALTERNATIVE_INIT_API
// Boost.Test would otherwise report every exiting worker as a failure of the running test.
#define BOOST_TEST_IGNORE_SIGCHLD
#include <boost/test/included/unit_test.hpp>

#include "support.hpp"

#include <mproc/init.hpp>

#include <cstdlib>
#include <fstream>

namespace {
bool init_unit_test() { return true; }
}  // namespace

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  // Proof for the spawn tests that no worker runs main past init: a test points this variable
  // at a file, and every process that gets here leaves its pid in it.
  if (const char* marker = std::getenv("MPROC_TEST_MAIN_MARKER")) {
    std::ofstream(marker, std::ios::app) << mproc_test::current_pid() << '\n';
  }
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
