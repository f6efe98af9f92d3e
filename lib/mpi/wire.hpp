#pragma once
// What rank 0 and the node supervisors say to each other: batches of encoded tasks one way,
// batches of results (values, or errors as their kind and fields) the other, a stop, and the
// identity each rank checks at start. Every message is one MPI_BYTE message; ranks run the same
// build (checked first), so fields are written in the machine's own byte order.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mproc::mpi_wire {

/// The tags of mproc's messages on its own communicator.
enum tag : int {
  tasks = 1,    // rank 0 -> node: task records
  results = 2,  // node -> rank 0: result records
  stop = 3,     // rank 0 -> node: one byte, 1 if running tasks are to be cancelled
  stopped = 4,  // node -> rank 0: empty; the node has no task left and is ending
};

/// Appends fixed-size fields and byte strings to a message.
class writer {
 public:
  explicit writer(std::vector<char>& out) noexcept : out_(out) {}

  /// Appends `value` (a trivially copyable field).
  template <class T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const std::size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  /// Appends a length and the bytes of `text`.
  void put_bytes(std::string_view text);

 private:
  std::vector<char>& out_;
};

/// Reads what a `writer` wrote; anything short or out of range is a `serialization_error`.
class reader {
 public:
  reader(const char* data, std::size_t size) noexcept : data_(data), size_(size) {}

  /// Reads a field written by `writer::put`.
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));
    return value;
  }
  /// Reads what `writer::put_bytes` wrote.
  std::string_view get_bytes();
  /// Returns whether everything has been read.
  bool done() const noexcept { return at_ == size_; }

 private:
  const char* take(std::size_t n);

  const char* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

/// Appends `error` (what a node's task failed with) as its kind and fields.
void put_error(writer& out, const std::exception_ptr& error);

/// Reads an error written by `put_error` and rebuilds it as the same mproc error type.
std::exception_ptr get_error(reader& in, const std::string& task);

/// What must be equal on every rank: the same program, built the same way.
struct identity {
  std::uint64_t registry_digest = 0;
  std::uint64_t task_count = 0;
  std::uint32_t boost_version = 0;
  std::uint32_t abi_version = 0;
  std::uint32_t byte_order = 0;
  std::uint32_t long_size = 0;
};

/// Returns this process's identity.
identity own_identity();

/// Returns what differs between `theirs` and `ours` ("" when nothing does).
std::string differences(const identity& theirs, const identity& ours);

/// What each node tells rank 0 at start.
struct node_hello {
  identity id;
  std::uint64_t workers = 0;  // its local pool's workers; 0 if it did not start one
  std::int64_t pid = 0;
  char host[64] = {};
  char problem[512] = {};  // why the node cannot serve ("" when it can)
};

}  // namespace mproc::mpi_wire
