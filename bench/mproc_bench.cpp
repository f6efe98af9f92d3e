// mproc's figures for bench/compare: one line per figure, "<figure> <method> <value> <unit>".
// The same workloads as bench/python_bench.py; --quick shrinks them to check that all runs.
#include "workload.hpp"

#include <mproc/mproc.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <ranges>
#include <string>
#include <vector>

#include <unistd.h>

int inc(int x) { return x + 1; }
int die(int) {
  std::raise(SIGKILL);  // a worker killed in the middle of its task
  return 0;
}
int worker_pid(int) { return static_cast<int>(::getpid()); }
std::vector<char> echo(std::vector<char> v) { return v; }
double first_and_last(mproc::shared_array<double> a) { return a[0] + a[a.size() - 1]; }

// Queue throughput: producers wait at the gate, then put their share; consumers take until the
// queue is closed and drained.
template <class T>
void put_share(mproc::queue<int> gate, mproc::queue<T> q, T value, int count) {
  (void)gate.get();
  for (int i = 0; i < count; ++i) q.put(value);
}
template <class T>
void take_all(mproc::queue<T> q) {
  try {
    for (;;) (void)q.get();
  } catch (const mproc::queue_closed&) {
  }
}

// Messages per second through a queue of 64 from `producers` to `consumers` processes.
template <class T>
double queue_rate(mproc::start_method m, const T& value, std::size_t max_message, int messages,
                  int producers, int consumers) {
  mproc::process_options o;
  o.start = m;
  mproc::queue<int> gate(static_cast<std::size_t>(producers));
  mproc::queue<T> q(64, max_message);
  std::vector<mproc::process> ps;
  std::vector<mproc::process> cs;
  for (int i = 0; i < consumers; ++i) cs.push_back(mproc::start_process<take_all<T>>(o, q));
  for (int i = 0; i < producers; ++i) {
    ps.push_back(mproc::start_process<put_share<T>>(o, gate, q, value, messages / producers));
  }
  const auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < producers; ++i) gate.put(0);
  for (auto& p : ps) p.join();
  q.close();
  for (auto& c : cs) c.join();
  return messages / std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

namespace {

using clock_type = std::chrono::steady_clock;

mproc::pool_options options(mproc::start_method m, std::size_t workers) {
  mproc::pool_options o;
  o.start = m;
  o.workers = workers;
  return o;
}

void report(const char* figure, mproc::start_method m, double value, const char* unit) {
  std::printf("%s %s %.2f %s\n", figure, mproc::to_string(m).data(), value, unit);
  std::fflush(stdout);
}

// Reports seven echoes: the first on the pool, the median of the first five, and the median of
// the last five (every worker has had one before them).
void report_echo(mproc::start_method m, std::vector<double> rates) {
  report("echo_first", m, rates[0], "MB/s");
  std::vector<double> steady(rates.begin() + 2, rates.end());
  std::sort(steady.begin(), steady.end());
  rates.resize(5);
  std::sort(rates.begin(), rates.end());
  report("echo", m, rates[2], "MB/s");
  report("echo_steady", m, steady[2], "MB/s");
}

}  // namespace

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int starts = quick ? 1 : 5;
  const int roundtrips = quick ? 200 : 2000;
  const int submits = quick ? 5000 : 100000;
  const int map_items = quick ? 50000 : 1000000;
  const std::size_t echo_bytes = quick ? (4U << 20) : (64U << 20);

  for (const mproc::start_method m : mproc::available_start_methods()) {
    std::vector<double> ms;
    for (int i = 0; i < starts; ++i) {
      const auto t = clock_type::now();
      mproc::process_pool pool(options(m, 4));
      if (pool.submit<inc>(0).get() != 1) return 1;
      ms.push_back(seconds_since(t) * 1e3);
    }
    std::sort(ms.begin(), ms.end());
    report("cold_start_4", m, ms[ms.size() / 2], "ms");
  }

  // Scaling of the seed_compare workload: ten items, sequential and on 1, 2 and 4 workers.
  const std::uint64_t steps = quick ? 1'000'000 : 40'000'000;
  auto t0 = clock_type::now();
  std::uint64_t check = 0;
  for (std::uint64_t seed = 1; seed <= 10; ++seed) check += simulate(seed, steps);
  const double sequential = seconds_since(t0);
  for (const std::size_t workers : {1, 2, 4}) {
    mproc::process_pool pool(options(mproc::start_method::fork, workers));
    t0 = clock_type::now();
    std::vector<mproc::future<std::uint64_t>> fs;
    for (std::uint64_t seed = 1; seed <= 10; ++seed)
      fs.push_back(pool.submit<simulate>(seed, steps));
    std::uint64_t sum = 0;
    for (auto& f : fs) sum += f.get();
    if (sum != check) return 1;
    std::printf("seed_speedup_%zuw fork %.2f x\n", workers, sequential / seconds_since(t0));
  }

  for (const mproc::start_method m : {mproc::start_method::fork, mproc::start_method::spawn}) {
    mproc::process_pool pool(options(m, 2));
    std::vector<double> us;
    for (int i = 0; i < roundtrips; ++i) {
      const auto t = clock_type::now();
      if (pool.submit<inc>(i).get() != i + 1) return 1;
      us.push_back(seconds_since(t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    report("roundtrip_median", m, us[us.size() / 2], "us");

    auto t = clock_type::now();
    std::vector<mproc::future<int>> fs;
    fs.reserve(static_cast<std::size_t>(submits));
    for (int i = 0; i < submits; ++i) fs.push_back(pool.submit<inc>(i));
    long long total = 0;
    for (auto& f : fs) total += f.get();
    report("submit_throughput", m, submits / seconds_since(t), "tasks/s");
    // The same again on the same pool: the first batch ran on memory the process had never
    // touched, which this machine maps a page at a time at a high price; this one reuses it.
    fs.clear();
    t = clock_type::now();
    for (int i = 0; i < submits; ++i) fs.push_back(pool.submit<inc>(i));
    for (auto& f : fs) total += f.get();
    report("submit_warm", m, submits / seconds_since(t), "tasks/s");

    std::vector<int> xs(static_cast<std::size_t>(map_items));
    std::iota(xs.begin(), xs.end(), 0);
    std::vector<int> ys;
    std::vector<double> map_rates;
    for (int i = 0; i < 3; ++i) {  // the median of three: the first maps fresh memory
      t = clock_type::now();
      ys = pool.map<inc>(xs, 1000);
      map_rates.push_back(map_items / seconds_since(t));
    }
    std::sort(map_rates.begin(), map_rates.end());
    report("map_throughput", m, map_rates[1], "items/s");

    // Lazy maps over a lazy input, results summed as they come, the same chunksize.
    const long long expected = static_cast<long long>(map_items) * (map_items + 1) / 2;
    for (const bool ordered : {true, false}) {
      std::vector<double> lazy_rates;
      for (int i = 0; i < 3; ++i) {
        t = clock_type::now();
        long long got = 0;
        const auto input = std::views::iota(0, map_items);
        if (ordered) {
          for (const int y : pool.imap<inc>(input, 1000)) got += y;
        } else {
          for (const int y : pool.imap_unordered<inc>(input, 1000)) got += y;
        }
        lazy_rates.push_back(map_items / seconds_since(t));
        if (got != expected) return 1;
      }
      std::sort(lazy_rates.begin(), lazy_rates.end());
      report(ordered ? "imap_throughput" : "imap_unordered", m, lazy_rates[1], "items/s");
    }

    const std::vector<char> payload(echo_bytes, 'x');
    std::vector<char> back;
    std::vector<double> rates;
    for (int i = 0; i < 7; ++i) {  // the first in each worker maps fresh memory
      t = clock_type::now();
      back = pool.submit<echo>(payload).get();
      rates.push_back(2.0 * static_cast<double>(echo_bytes) / 1e6 / seconds_since(t));
    }
    report_echo(m, rates);
    if (back.size() != payload.size() || ys.back() != map_items || total <= 0) return 1;

    // Passing a shared_array costs the same whatever its size: only a handle travels. The two
    // sizes come in a shuffled order, so that both meet the pool in the same states (strict
    // alternation lined one size up with a period-two pattern in the round trips).
    std::vector<mproc::shared_array<double>> arrays;
    arrays.emplace_back((std::size_t{1} << 10) / sizeof(double));
    arrays.emplace_back((std::size_t{1} << 30) / sizeof(double));
    std::vector<double> pass_us[2];
    std::mt19937 pick(42);
    for (int i = 0; i < (quick ? 40 : 400); ++i) {
      const std::size_t k = pick() % 2;
      const auto s = clock_type::now();
      if (pool.submit<first_and_last>(arrays[k]).get() != 0.0) return 1;
      pass_us[k].push_back(seconds_since(s) * 1e6);
    }
    for (int k = 0; k < 2; ++k) {
      std::sort(pass_us[k].begin(), pass_us[k].end());
      report(k == 0 ? "pass_shared_1KiB" : "pass_shared_1GiB", m, pass_us[k][pass_us[k].size() / 2],
             "us");
    }
  }
  // A worker dies with 20 tasks queued behind its task: how soon that task fails, how many
  // others fail with it, and (on one worker) how soon a replacement serves the next task.
  for (const mproc::start_method m : {mproc::start_method::fork, mproc::start_method::spawn}) {
    std::vector<double> fail_ms;
    std::vector<double> replace_ms;
    int others_failed = 0;
    const int rounds = quick ? 2 : 5;
    for (int round = 0; round < rounds; ++round) {
      {  // one pool at a time: a fork needs a process without threads
        mproc::process_pool pool(options(m, 2));
        const auto t = clock_type::now();
        mproc::future<int> doomed = pool.submit<die>(0);
        std::vector<mproc::future<int>> queued;
        for (int i = 0; i < 20; ++i) queued.push_back(pool.submit<inc>(i));
        try {
          doomed.get();
          return 1;
        } catch (const mproc::worker_crashed&) {
          fail_ms.push_back(seconds_since(t) * 1e3);
        }
        for (int i = 0; i < 20; ++i) {
          try {
            if (queued[static_cast<std::size_t>(i)].get() != i + 1) return 1;
          } catch (const mproc::error&) {
            ++others_failed;
          }
        }
      }
      mproc::process_pool single(options(m, 1));
      const int before = single.submit<worker_pid>(0).get();
      mproc::future<int> killed = single.submit<die>(0);
      try {
        killed.get();
        return 1;
      } catch (const mproc::worker_crashed&) {
      }
      const auto r = clock_type::now();
      if (single.submit<worker_pid>(0).get() == before) return 1;
      replace_ms.push_back(seconds_since(r) * 1e3);
    }
    std::sort(fail_ms.begin(), fail_ms.end());
    std::sort(replace_ms.begin(), replace_ms.end());
    report("crash_fails_task", m, fail_ms[fail_ms.size() / 2], "ms");
    report("crash_fails_others", m, static_cast<double>(others_failed) / rounds, "tasks");
    report("crash_replaced", m, replace_ms[replace_ms.size() / 2], "ms");
  }

  // Queues between processes, against multiprocessing.Queue: small messages (an int) and
  // 64 KiB ones, one producer and one consumer, then two of each.
  const int small_messages = quick ? 20000 : 200000;
  const int large_messages = quick ? 2000 : 20000;
  const std::vector<char> block(64 << 10, 'q');
  for (const mproc::start_method m : mproc::available_start_methods()) {
    if (m == mproc::start_method::forkserver) continue;  // as python_bench.py: fork and spawn
    for (const int n : {1, 2}) {
      const std::string suffix = std::to_string(n) + "x" + std::to_string(n);
      report(("queue_int_" + suffix).c_str(), m, queue_rate(m, 7, 64, small_messages, n, n),
             "msgs/s");
      report(("queue_64KiB_" + suffix).c_str(), m,
             queue_rate(m, block, block.size() + 64, large_messages, n, n), "msgs/s");
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "mproc_bench: %s\n", e.what());
  return 2;
}
