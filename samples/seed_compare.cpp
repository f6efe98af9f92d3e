// Compares ten CPU-bound items run sequentially, on a thread pool and on a process pool.
#include <mproc/mproc.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <vector>

#if defined(_WIN32)
#include <io.h>
bool stdout_is_a_terminal() { return _isatty(1) != 0; }
#else
#include <unistd.h>
bool stdout_is_a_terminal() { return isatty(1) != 0; }
#endif

// The work: a long chain of pseudo-random steps whose every step feeds the next, so the
// optimizer can neither skip nor shorten it.
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

// Draws a progress bar on a terminal (and nothing when the output is a file or a pipe).
void draw_progress(const char* label, std::size_t done, std::size_t total) {
  if (!stdout_is_a_terminal()) return;
  const int width = 30;
  const int filled = total == 0 ? width : static_cast<int>(width * done / total);
  std::printf("\r  %-20s [%.*s%*s] %zu/%zu", label, filled, "##############################",
              width - filled, "", done, total);
  if (done == total) std::printf("\r%*s\r", 80, "");
  std::fflush(stdout);
}

// Runs the items on any pool with map (one item per message), drawing progress.
template <class Pool>
std::vector<std::uint64_t> run_on(Pool& pool, const char* label,
                                  const std::vector<std::uint64_t>& seeds) {
  return pool.template map<simulate>(seeds, 1, [label](std::size_t done, std::size_t total) {
    draw_progress(label, done, total);
  });
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
  std::vector<std::uint64_t> seeds(10);
  for (std::size_t i = 0; i < seeds.size(); ++i) seeds[i] = i + 1;

  std::vector<std::uint64_t> sequential, threaded, processes;
  const double t_seq = seconds_of([&] {
    for (const std::uint64_t s : seeds) sequential.push_back(simulate(s));
  });
  // The same code runs on threads and on processes: only the pool's type differs.
  const double t_threads = seconds_of([&] {
    mproc::thread_pool threads(options.workers);
    threaded = run_on(threads, "threads", seeds);
  });
  std::unique_ptr<mproc::process_pool> started;
  const double t_start =
      seconds_of([&] { started = std::make_unique<mproc::process_pool>(options); });
  mproc::process_pool& pool = *started;
  const double t_procs = seconds_of([&] { processes = run_on(pool, "processes", seeds); });

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
