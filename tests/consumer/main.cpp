// A program outside the project: squares numbers in worker processes.
#include <mproc/mproc.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

int square(int x) { return x * x; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool(mproc::parse_pool_options(argc, argv));
  std::vector<int> xs(100);
  std::iota(xs.begin(), xs.end(), 0);
  const std::vector<int> ys = pool.map<square>(xs);
  const long sum = std::accumulate(ys.begin(), ys.end(), 0L);
  std::printf("consumer: sum of squares 0..99 = %ld (%s)\n", sum,
              mproc::to_string(pool.start_method()).data());
  return sum == 328350 ? 0 : 1;
}
