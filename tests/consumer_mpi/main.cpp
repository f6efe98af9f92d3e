// Run with mpiexec -n 2 or more: rank 0 squares numbers on the other ranks' workers.
#include <mproc/mpi_pool.hpp>
#include <mproc/mproc.hpp>

#include <cstdio>
#include <vector>

int square(int x) { return x * x; }

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  mproc::mpi_options o;
  o.workers_per_node = 1;
  mproc::mpi_pool pool(argc, argv, o);
  std::vector<int> xs{1, 2, 3, 4};
  const auto ys = pool.map<square>(xs);
  const int sum = ys[0] + ys[1] + ys[2] + ys[3] + pool.submit<square>(5).get();
  std::printf("consumer_mpi: %d on %zu nodes\n", sum, pool.nodes());
  return sum == 55 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer_mpi: %s\n", e.what());
  return 2;
}
