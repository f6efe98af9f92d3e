// Shows mproc::shared_array: workers read and write one large array in place, without copies.
#include <mproc/mproc.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <utility>
#include <vector>

using range = std::pair<std::size_t, std::size_t>;

// Each task scales its own slice in place and returns the slice's sum.
double scale_and_sum(mproc::shared_array<double> data, range slice) {
  double sum = 0;
  for (std::size_t i = slice.first; i < slice.second; ++i) {
    data[i] = std::sqrt(data[i]);
    sum += data[i];
  }
  return sum;
}

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  mproc::process_pool pool(mproc::parse_pool_options(argc, argv));

  const std::size_t n = std::size_t{1} << 24;  // 16 M doubles: 128 MiB, never copied
  mproc::shared_array<double> data(n);
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<double>(i % 1000);

  const std::size_t parts = 16;
  std::vector<mproc::future<double>> sums;
  for (std::size_t p = 0; p < parts; ++p) {
    sums.push_back(pool.submit<scale_and_sum>(data, range{p * n / parts, (p + 1) * n / parts}));
  }
  double total = 0;
  for (auto& s : sums) total += s.get();

  // The workers' writes are visible here: the array is the same memory.
  double expected = 0;
  bool in_place = true;
  for (std::size_t i = 0; i < n; ++i) {
    const double want = std::sqrt(static_cast<double>(i % 1000));
    expected += want;
    in_place = in_place && data[i] == want;
  }
  std::printf(
      "shared_array: %zu doubles on %zu workers (%s); sum %.1f, expected %.1f; "
      "written in place: %s\n",
      n, pool.workers(), mproc::to_string(pool.start_method()).data(), total, expected,
      in_place ? "yes" : "NO");
  return in_place && std::abs(total - expected) < 1e-6 * expected ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "shared_array: %s\n", e.what());
  return 2;
}
