// Compares ten CPU-bound items run sequentially, on a thread pool and on a process pool.
#include <mproc/mproc.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

// The work: a long chain of pseudo-random steps whose every step feeds the next, so the
// optimizer can neither skip nor shorten it.
std::uint64_t simulate(std::uint64_t seed, std::uint64_t steps) {
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

double seconds_of(const std::function<void()>& run) {
  const auto start = std::chrono::steady_clock::now();
  run();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main(int argc, char** argv) try {
  mproc::init(argc, argv);  // first line: a spawned worker never returns from here
  mproc::pool_options defaults;
  defaults.workers = 5;
  const mproc::pool_options options = mproc::parse_pool_options(argc, argv, defaults);
  const std::uint64_t steps = 40'000'000;
  std::vector<std::uint64_t> seeds(10);
  for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = i + 1;

  std::vector<std::uint64_t> sequential, threaded(seeds.size()), processes;
  const double t_seq = seconds_of([&] {
    for (const std::uint64_t s : seeds) sequential.push_back(simulate(s, steps));
  });
  const double t_threads = seconds_of([&] {
    boost::asio::thread_pool threads(options.workers);
    for (std::size_t i = 0; i < seeds.size(); ++i) {
      boost::asio::post(threads, [&, i] { threaded[i] = simulate(seeds[i], steps); });
    }
    threads.join();
  });
  std::unique_ptr<mproc::process_pool> started;
  const double t_start =
      seconds_of([&] { started = std::make_unique<mproc::process_pool>(options); });
  mproc::process_pool& pool = *started;
  const double t_procs = seconds_of([&] {
    std::vector<mproc::future<std::uint64_t>> futures;
    for (const std::uint64_t s : seeds) futures.push_back(pool.submit<simulate>(s, steps));
    for (auto& f : futures) processes.push_back(f.get());
  });

  std::printf("seed_compare: %zu items of %llu steps\n", seeds.size(),
              static_cast<unsigned long long>(steps));
  std::printf("  sequential           %8.1f ms\n", t_seq * 1e3);
  std::printf("  thread pool of %zu    %8.1f ms  (%.2fx)\n", options.workers, t_threads * 1e3,
              t_seq / t_threads);
  std::printf(
      "  process pool of %zu   %8.1f ms  (%.2fx, start method %s; starting the pool took "
      "%.1f ms more)\n",
      pool.workers(), t_procs * 1e3, t_seq / t_procs, mproc::to_string(pool.start_method()).data(),
      t_start * 1e3);
  std::printf(
      "Threads speed C++ up too: there is no GIL. Processes add isolation: a crash, a\n"
      "leak or a library that is not thread-safe stays inside its worker.\n");
  if (sequential != threaded || sequential != processes) {
    std::printf("FAILED: the three runs disagree\n");
    return 1;
  }
  std::printf("results: all three runs agree\n");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "seed_compare: %s\n", e.what());
  return 2;
}
