// mpi_pool beside process_pool, same workloads: "<figure> <pool> <value> <unit>" lines.
//   mproc_mpi_pool_bench --local      a process_pool of 2 workers (MPI is not started)
//   mpiexec -n 3 mproc_mpi_pool_bench an mpi_pool of 2 nodes with 1 worker each
// --quick shrinks the workloads to check that everything runs.
#include "workload.hpp"

#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

int inc(int x) { return x + 1; }

// The seed workload, shortened to 10 M steps an item.
std::uint64_t simulate_10m(std::uint64_t seed) { return simulate(seed, 10'000'000); }

namespace {

using clock_type = std::chrono::steady_clock;

template <class Pool>
void measure(Pool& pool, const char* name, bool quick) {
  // Round trip of one small task, median of many after a warm-up.
  std::vector<double> trips;
  for (int i = 0; i < (quick ? 50 : 2000); ++i) {
    const auto t = clock_type::now();
    (void)pool.template submit<inc>(i).get();
    if (i >= 20) trips.push_back(seconds_since(t) * 1e6);
  }
  std::nth_element(trips.begin(), trips.begin() + static_cast<long>(trips.size() / 2), trips.end());
  std::printf("roundtrip_median %s %.2f us\n", name, trips[trips.size() / 2]);

  // Submits then gather: one task per call.
  const int n = quick ? 2000 : 100000;
  auto t = clock_type::now();
  std::vector<mproc::future<int>> fs;
  fs.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) fs.push_back(pool.template submit<inc>(i));
  for (auto& f : fs) (void)f.get();
  std::printf("submit_throughput %s %.0f tasks/s\n", name, n / seconds_since(t));

  // map with large chunks: what scales on a cluster.
  std::vector<int> xs(static_cast<std::size_t>(quick ? 10000 : 1000000), 1);
  t = clock_type::now();
  const auto ys = pool.template map<inc>(xs, 1000);
  std::printf("map_chunks_1000 %s %.0f items/s\n", name,
              static_cast<double>(xs.size()) / seconds_since(t));

  // The seed workload: speed-up over running the items one after another here.
  std::vector<std::uint64_t> seeds(quick ? 2 : 8);
  for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = i + 1;
  t = clock_type::now();
  volatile std::uint64_t sink = simulate_10m(seeds[0]);  // volatile: the call must happen
  (void)sink;
  const double one = seconds_since(t);
  t = clock_type::now();
  (void)pool.template map<simulate_10m>(seeds, 1);
  std::printf("seed_speedup %s %.2f x\n", name,
              one * static_cast<double>(seeds.size()) / seconds_since(t));
}

}  // namespace

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  bool local = false;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    local = local || std::strcmp(argv[i], "--local") == 0;
    quick = quick || std::strcmp(argv[i], "--quick") == 0;
  }
  if (local) {
    mproc::pool_options o;
    o.workers = 2;
    mproc::process_pool pool(o);
    measure(pool, "process_pool", quick);
    return 0;
  }
  mproc::mpi_options o;
  o.workers_per_node = 1;
  mproc::mpi_pool pool(argc, argv, o);
  measure(pool, "mpi_pool", quick);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mproc_mpi_pool_bench: %s\n", e.what());
  return 1;
}
