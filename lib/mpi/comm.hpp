#pragma once
// The few MPI calls mproc makes, each turning a failure into an mproc error: sends that never
// block (so two ranks sending to each other cannot deadlock) and a receive that only looks.

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <vector>

namespace mproc::mpi_comm {

/// The largest message: MPI counts bytes in an int.
inline constexpr std::size_t max_message = 0x7fff0000;

/// Throws `error` naming `call` and MPI's text for `rc` unless `rc` is MPI_SUCCESS.
void check(int rc, const char* call);

/// A message taken from the communicator.
struct incoming {
  int source = 0;
  int tag = 0;
  std::vector<char> bytes;
};

/// Receives a message from `source` (or MPI_ANY_SOURCE) if one has arrived; never waits.
std::optional<incoming> poll(MPI_Comm comm, int source);

/// How long a rank that polls its communicator waits between looks: not at all for a short while
/// after something happened (a reply is likely soon), then naps that double up to `longest`, so
/// an idle rank costs its node's workers almost no CPU. Open MPI's blocking calls would spin.
class backoff {
 public:
  /// Creates a back-off whose naps grow to `longest`.
  explicit backoff(std::chrono::microseconds longest) noexcept : longest_(longest) {}
  /// Records that something happened now.
  void active() noexcept;
  /// Returns how long to nap before the next look; zero means yield and look again.
  std::chrono::microseconds next() noexcept;

 private:
  static constexpr std::chrono::microseconds linger{200};
  static constexpr std::chrono::microseconds shortest{10};
  std::chrono::microseconds longest_;
  std::chrono::microseconds nap_{shortest};
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

/// Messages being sent: each buffer lives until MPI is done with it.
class outbox {
 public:
  outbox() = default;
  ~outbox();
  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  /// Starts sending `bytes` to `dest` with `tag`.
  void send(MPI_Comm comm, int dest, int tag, std::vector<char> bytes);
  /// Frees the buffers of the sends that have completed; true if any had.
  bool progress();
  /// Returns whether every send has completed.
  bool empty() const noexcept { return sending_.empty(); }
  /// Waits until every send has completed.
  void drain();

 private:
  struct sending {
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<char> bytes;
  };
  std::list<sending> sending_;
};

}  // namespace mproc::mpi_comm
