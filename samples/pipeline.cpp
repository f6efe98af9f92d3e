// Shows mproc::start_process and mproc::queue: a producer process fills a work queue, consumer
// processes turn items into results on a second queue, and the application adds them up.
// With --kill-one the application kills a consumer in the middle (SIGKILL) and starts another:
// the item the dead consumer held is missing from the results, is found, and is redone, and
// the total still adds up.
//
//   pipeline [--start-method=fork|spawn|forkserver] [--workers=N consumers] [--kill-one]
#include <mproc/mproc.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int items = 2000;

// The work for one item: the Collatz steps of a thousand numbers near it.
std::int64_t work(int item) {
  std::int64_t steps = 0;
  for (std::uint64_t n = std::uint64_t(item) * 1000; n < std::uint64_t(item) * 1000 + 1000; ++n) {
    for (std::uint64_t x = n; x > 1; x = x % 2 == 0 ? x / 2 : 3 * x + 1) ++steps;
  }
  return steps;
}

using result = std::pair<int, std::int64_t>;  // (item, its work); item 0: "this consumer is done"

}  // namespace

// Puts items first, first + 1, ... up to `last`, then closes the queue: the consumers stop
// once it runs dry.
void produce(mproc::queue<int> work_queue, int first, int last) {
  for (int i = first; i <= last; ++i) work_queue.put(i);
  work_queue.close();
}

// Turns items into results until the work queue is closed and drained, then says it is done.
void consume(mproc::queue<int> work_queue, mproc::queue<result> results) {
  try {
    for (;;) {
      const int item = work_queue.get();
      results.put({item, work(item)});
    }
  } catch (const mproc::queue_closed&) {
  }
  results.put({0, 0});
}

namespace {

// Runs `consumers` consumers over the items in `todo` (with a producer process), killing one of
// them in the middle if `kill_one`; records each result in `got`.
void run_round(const mproc::process_options& options, const std::vector<int>& todo,
               std::size_t consumers, bool kill_one, std::vector<std::int64_t>& got) {
  mproc::queue<int> work_queue(64);
  mproc::queue<result> results(64);
  std::vector<mproc::process> workers;
  for (std::size_t c = 0; c < consumers; ++c) {
    workers.push_back(mproc::start_process<consume>(options, work_queue, results));
  }
  // A producer process for a range; a few stragglers are put from here.
  mproc::process producer;
  if (todo.back() - todo.front() + 1 == static_cast<int>(todo.size())) {
    producer = mproc::start_process<produce>(options, work_queue, todo.front(), todo.back());
  } else {
    for (const int item : todo) work_queue.put(item);
    work_queue.close();
  }
  std::size_t received = 0;
  std::size_t done = 0;
  bool killed = !kill_one;
  while (done < consumers) {
    const result r = results.get();
    if (r.first == 0) {
      ++done;
      continue;
    }
    got[static_cast<std::size_t>(r.first)] = r.second;
    if (++received == todo.size() / 3 && !killed) {
      const int victim = workers[0].pid();
      workers[0].kill();
      workers[0].join();
      workers[0] = mproc::start_process<consume>(options, work_queue, results);
      std::printf("killed consumer %d after %zu results; consumer %d took its place\n", victim,
                  received, workers[0].pid());
      killed = true;
    }
  }
  if (work_queue.lost() != 0) {
    std::printf("the queue counted %llu item(s) taken by a consumer that died taking them\n",
                static_cast<unsigned long long>(work_queue.lost()));
  }
  for (auto& w : workers) w.join();
  if (producer.pid() > 0) producer.join();
}

}  // namespace

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  const mproc::pool_options pool = mproc::parse_pool_options(argc, argv);
  mproc::process_options options;
  options.start = pool.start;
  const std::size_t consumers = pool.workers != 0 ? pool.workers : 2;
  bool kill_one = false;
  for (int i = 1; i < argc; ++i) kill_one = kill_one || std::strcmp(argv[i], "--kill-one") == 0;

  std::printf("pipeline: %d items, %zu consumer processes, start method %s%s\n", items, consumers,
              std::string(mproc::to_string(options.start)).c_str(),
              kill_one ? ", one consumer killed in the middle" : "");
  std::vector<std::int64_t> got(items + 1, -1);
  std::vector<int> todo;
  for (int i = 1; i <= items; ++i) todo.push_back(i);
  run_round(options, todo, consumers, kill_one, got);

  // What a dead consumer held is missing: found and redone.
  std::vector<int> missing;
  for (int i = 1; i <= items; ++i) {
    if (got[static_cast<std::size_t>(i)] < 0) missing.push_back(i);
  }
  if (!missing.empty()) {
    std::printf("%zu item(s) missing from the results (held by the killed consumer): redone\n",
                missing.size());
    run_round(options, missing, 1, false, got);
  }

  std::int64_t total = 0;
  std::int64_t expected = 0;
  for (int i = 1; i <= items; ++i) {
    total += got[static_cast<std::size_t>(i)];
    expected += work(i);
  }
  std::printf("total %lld, expected %lld: %s\n", static_cast<long long>(total),
              static_cast<long long>(expected), total == expected ? "they add up" : "MISMATCH");
  return total == expected ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "pipeline: %s\n", e.what());
  return 1;
}
