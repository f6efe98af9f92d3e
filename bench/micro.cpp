// Micro figures behind bench/compare's table, on Google Benchmark: the channel alone (a message
// there and back between two threads), the two codecs, a task state completed and awaited, and
// a submit-and-get on a pool of two workers.
#include "channel/channel.hpp"

#include <mproc/mproc.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace ch = mproc::channel;

int inc(int x) { return x + 1; }

ch::message_header header_for(std::size_t size, std::uint64_t id) {
  ch::message_header h;
  h.kind = ch::message_kind::task;
  h.id = id;
  h.count = 1;
  h.size = size;
  return h;
}

// One message of `range(0)` bytes to a thread that sends it back, over a segment's two rings.
void channel_round_trip(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  std::error_code ec;
  auto seg = ch::segment::create(std::size_t{1} << 20, ec);
  if (!seg) std::abort();
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();
  std::thread echo([&] {
    ch::message_header h;
    std::vector<char> payload;
    while (worker.receive(h, payload) == ch::io_status::ok && h.kind == ch::message_kind::task) {
      if (worker.send(h, payload.data()) != ch::io_status::ok) break;
    }
  });
  const std::vector<char> message(size, 'x');
  std::vector<char> back;
  ch::message_header h;
  std::uint64_t id = 0;
  for (auto _ : state) {
    if (parent.send(header_for(size, ++id), message.data()) != ch::io_status::ok ||
        parent.receive(h, back) != ch::io_status::ok || h.id != id) {
      state.SkipWithError("the echo thread did not answer");
      break;
    }
  }
  ch::message_header stop;
  stop.kind = ch::message_kind::shutdown;
  (void)parent.send(stop, nullptr);
  echo.join();
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * size));
}
BENCHMARK(channel_round_trip)->Arg(8)->Arg(64 << 10)->Arg(16 << 20)->UseRealTime();

// Writes `values` and reads them back, through the raw codec or a Boost archive.
template <bool Raw, class T>
void codec_round_trip(benchmark::State& state, const T& values) {
  std::vector<char> bytes;
  T back;
  for (auto _ : state) {
    bytes.clear();
    mproc::detail::with_writer<Raw>(bytes, [&](auto& out) { mproc::detail::put(out, values); });
    mproc::detail::with_reader<Raw>(bytes.data(), bytes.size(),
                                    [&](auto& in) { mproc::detail::get(in, back); });
    benchmark::DoNotOptimize(back.size());
  }
}

// Raw codec: a vector of 1000 ints, as one block.
void raw_codec_vector(benchmark::State& state) {
  std::vector<int> values(1000);
  std::iota(values.begin(), values.end(), 0);
  codec_round_trip<true>(state, values);
}
BENCHMARK(raw_codec_vector);

// Boost archive codec: a small map, which the raw codec does not take.
void archive_codec_map(benchmark::State& state) {
  codec_round_trip<false>(state, std::map<std::string, int>{{"alpha", 1}, {"beta", 2}});
}
BENCHMARK(archive_codec_map);

// A task state completed by one thread and awaited by another, as a result travels to get().
void task_state_handoff(benchmark::State& state) {
  for (auto _ : state) {
    auto s = std::make_shared<mproc::detail::task_state>(1);
    std::thread completer([s] { s->set_value(std::vector<char>(8)); });
    benchmark::DoNotOptimize(s->take().size());
    completer.join();
  }
}
BENCHMARK(task_state_handoff)->UseRealTime();

// submit<F>(x).get() on a pool of two workers, one task at a time.
void pool_submit_get(benchmark::State& state) {
  mproc::pool_options o;
  o.workers = 2;
  o.start = static_cast<mproc::start_method>(state.range(0));
  mproc::process_pool pool(o);
  state.SetLabel(std::string(mproc::to_string(pool.start_method())));
  int i = 0;
  for (auto _ : state) {
    if (pool.submit<inc>(i).get() != i + 1) {
      state.SkipWithError("wrong result");
      break;
    }
    ++i;
  }
}
BENCHMARK(pool_submit_get)
    ->Arg(static_cast<int>(mproc::start_method::fork))
    ->Arg(static_cast<int>(mproc::start_method::spawn))
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
