// The seed workload of seed_compare over every rank of an MPI job: rank 0 submits, each other
// rank runs the items on its node's workers. Run it with
//   mpiexec -n 3 ./cluster --workers-per-node=2
#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <utility>
#include <vector>

// The work: a long chain of pseudo-random steps whose every step feeds the next.
constexpr std::uint64_t steps = 40'000'000;

std::uint64_t simulate(std::uint64_t seed) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  std::uint64_t acc = 0;
  for (std::uint64_t i = 0; i < steps; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    acc += (x >> 32) ^ (acc << 1);
  }
  return acc;
}

// The MPI rank of the node a worker belongs to, as the launcher tells it (Open MPI, MPICH,
// PMIx and Slurm each have their own variable).
int node_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(name)) return std::atoi(value);
  }
  return -1;
}

// One item: its result and the rank whose worker computed it.
std::pair<std::uint64_t, int> simulate_on_node(std::uint64_t seed) {
  return {simulate(seed), node_rank()};
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main(int argc, char** argv) try {
  mproc::init(argc, argv);  // first: a spawned worker never returns from here
  mproc::mpi_options options;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--workers-per-node=", 19) == 0) {
      options.workers_per_node = std::strtoul(argv[i] + 19, nullptr, 10);
    }
  }
  options.local = mproc::parse_pool_options(argc, argv);
  mproc::mpi_pool pool(argc, argv, options);  // ranks other than 0 serve here and never return

  std::vector<std::uint64_t> seeds(12);
  for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = i + 1;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::uint64_t> sequential;
  for (std::size_t i = 0; i < 2; ++i) sequential.push_back(simulate(seeds[i]));
  const double per_item = seconds_since(start) / 2;

  start = std::chrono::steady_clock::now();
  const auto results = pool.map<simulate_on_node>(seeds, 1);
  const double t_pool = seconds_since(start);

  std::map<int, std::size_t> per_rank;
  for (const auto& r : results) ++per_rank[r.second];
  std::printf("cluster: %zu items of %llu steps on %zu nodes, %zu workers\n", seeds.size(),
              static_cast<unsigned long long>(steps), pool.nodes(), pool.workers());
  for (std::size_t n = 0; n < pool.nodes(); ++n) {
    const int rank = static_cast<int>(n) + 1;
    std::printf("  rank %d: %zu workers, %zu items\n", rank, pool.workers_on(n), per_rank[rank]);
  }
  const double t_seq = per_item * static_cast<double>(seeds.size());
  std::printf("  sequential (estimated from 2 items) %8.1f ms\n", t_seq * 1e3);
  std::printf("  mpi_pool                            %8.1f ms  (%.2fx)\n", t_pool * 1e3,
              t_seq / t_pool);
  for (std::size_t i = 0; i < sequential.size(); ++i) {
    if (results[i].first != sequential[i]) {
      std::printf("FAILED: item %zu differs from its sequential result\n", i);
      return 1;
    }
  }
  std::size_t counted = 0;
  for (const auto& [rank, n] : per_rank) counted += rank >= 1 ? n : 0;
  if (counted != seeds.size()) {
    std::printf("FAILED: %zu items came from no known node\n", seeds.size() - counted);
    return 1;
  }
  std::printf("results: every item came back from a node, and they agree\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "cluster: %s\n", e.what());
  return 2;
}
