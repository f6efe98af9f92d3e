// A shared_array at namespace scope: created during static initialisation, perhaps before the
// library's own objects, and destroyed after main. (Its own program: the array lives as long as
// the process, which the other suites' checks for leftover segments would count.)

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

namespace bdata = boost::unit_test::data;

namespace {

mproc::shared_array<double> g_at_namespace_scope(64);

double sum_and_double(mproc::shared_array<double> a) {
  double sum = 0;
  for (double& v : a) {
    sum += v;
    v *= 2;
  }
  return sum;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(static_init)

BOOST_DATA_TEST_CASE(a_shared_array_at_namespace_scope_works,
                     bdata::make(mproc_test::methods_under_test()), method) {
  mproc::shared_array<double>& a = g_at_namespace_scope;
  BOOST_TEST_REQUIRE(a.size() == 64U);
  for (double& v : a) v = 1.0;
  mproc::process_pool pool(mproc_test::options(method, 1));
  BOOST_TEST(pool.submit<sum_and_double>(a).get() == 64.0);
  for (const double v : a) BOOST_TEST(v == 2.0);
  // The array is this process's one segment once the pool is gone.
  pool.shutdown();
  BOOST_TEST(mproc_test::leftover_segments().size() == 1U);
}

BOOST_AUTO_TEST_SUITE_END()
