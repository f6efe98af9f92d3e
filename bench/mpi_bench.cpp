// Open MPI's figures for bench/compare, on the same workloads as mproc_bench: run with
// `mpiexec -n 3` (rank 0 the application, ranks 1 and 2 the workers) over shared memory.
// One line per figure, "<figure> mpi <value> <unit>"; --quick shrinks the workloads.
//   roundtrip_median   an int to rank 1 and back, median of the round trips
//   submit_throughput  one task per message (an int), spread over both workers, each answered,
//                      with at most 128 unanswered at a time
//   echo               64 MiB to rank 1 and back, each side receiving into a fresh buffer
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace {

constexpr int task_tag = 1;
constexpr int echo_tag = 2;
constexpr int stop_tag = 3;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A worker: answers every task with its value plus one, echoes every block, until told to stop.
void serve() {
  for (;;) {
    MPI_Message message;
    MPI_Status status;
    MPI_Mprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &message, &status);
    if (status.MPI_TAG == stop_tag) {
      MPI_Mrecv(nullptr, 0, MPI_BYTE, &message, MPI_STATUS_IGNORE);
      return;
    }
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    // A fresh buffer for each message, as a task's argument is.
    std::unique_ptr<char[]> buffer(new char[static_cast<std::size_t>(bytes)]);
    MPI_Mrecv(buffer.get(), bytes, MPI_BYTE, &message, MPI_STATUS_IGNORE);
    if (status.MPI_TAG == task_tag) {
      int value = 0;
      std::memcpy(&value, buffer.get(), sizeof value);
      ++value;
      MPI_Send(&value, 1, MPI_INT, 0, task_tag, MPI_COMM_WORLD);
    } else {
      MPI_Send(buffer.get(), bytes, MPI_BYTE, 0, echo_tag, MPI_COMM_WORLD);
    }
  }
}

void report(const char* figure, double value, const char* unit) {
  std::printf("%s mpi %.2f %s\n", figure, value, unit);
  std::fflush(stdout);
}

void lead(bool quick, int workers) {
  const int roundtrips = quick ? 200 : 2000;
  const int submits = quick ? 5000 : 100000;
  const std::size_t echo_bytes = quick ? (4U << 20) : (64U << 20);

  std::vector<double> us;
  for (int i = 0; i < roundtrips; ++i) {
    const auto t = std::chrono::steady_clock::now();
    int value = i;
    MPI_Send(&value, 1, MPI_INT, 1, task_tag, MPI_COMM_WORLD);
    MPI_Recv(&value, 1, MPI_INT, 1, task_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (value != i + 1) MPI_Abort(MPI_COMM_WORLD, 1);
    us.push_back(seconds_since(t) * 1e6);
  }
  std::sort(us.begin(), us.end());
  report("roundtrip_median", us[us.size() / 2], "us");

  const auto t = std::chrono::steady_clock::now();
  long long sum = 0;
  int sent = 0;
  int answered = 0;
  constexpr int window = 128;
  while (answered < submits) {
    while (sent < submits && sent - answered < window) {
      MPI_Send(&sent, 1, MPI_INT, 1 + sent % workers, task_tag, MPI_COMM_WORLD);
      ++sent;
    }
    int value = 0;
    MPI_Recv(&value, 1, MPI_INT, MPI_ANY_SOURCE, task_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    sum += value;
    ++answered;
  }
  report("submit_throughput", submits / seconds_since(t), "tasks/s");
  if (sum != static_cast<long long>(submits) * (submits + 1) / 2) MPI_Abort(MPI_COMM_WORLD, 1);

  std::vector<char> payload(echo_bytes, 'x');
  std::vector<double> rates;
  for (int i = 0; i < 7; ++i) {  // as mproc_bench: the first, the first five, the last five
    const auto e = std::chrono::steady_clock::now();
    MPI_Send(payload.data(), static_cast<int>(echo_bytes), MPI_BYTE, 1, echo_tag, MPI_COMM_WORLD);
    std::unique_ptr<char[]> back(new char[echo_bytes]);
    MPI_Recv(back.get(), static_cast<int>(echo_bytes), MPI_BYTE, 1, echo_tag, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    rates.push_back(2.0 * static_cast<double>(echo_bytes) / 1e6 / seconds_since(e));
    if (back[echo_bytes - 1] != 'x') MPI_Abort(MPI_COMM_WORLD, 1);
  }
  report("echo_first", rates[0], "MB/s");
  std::vector<double> steady(rates.begin() + 2, rates.end());
  std::sort(steady.begin(), steady.end());
  rates.resize(5);
  std::sort(rates.begin(), rates.end());
  report("echo", rates[2], "MB/s");
  report("echo_steady", steady[2], "MB/s");

  for (int w = 1; w <= workers; ++w) MPI_Send(nullptr, 0, MPI_BYTE, w, stop_tag, MPI_COMM_WORLD);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    std::fprintf(stderr, "mpi_bench: run it with mpiexec -n 3\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (rank == 0) {
    lead(argc > 1 && std::strcmp(argv[1], "--quick") == 0, size - 1);
  } else {
    serve();
  }
  MPI_Finalize();
  return 0;
}
