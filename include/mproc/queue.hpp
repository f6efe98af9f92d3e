#pragma once
// A bounded queue between processes that no participant's death can block or corrupt:
// multiprocessing.Queue for C++.

#include <mproc/detail/codec.hpp>
#include <mproc/errors.hpp>
#include <mproc/serializable.hpp>

#include <boost/serialization/split_member.hpp>
#include <boost/serialization/string.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace mproc {

/// A `queue` was closed and holds nothing more: `get` has nothing to return, `put` no room.
class queue_closed : public error {
 public:
  /// Creates the error with its standard message.
  queue_closed();
};

namespace detail {

/// Where a queue's memory is found by another process (what a `queue` handle travels as).
struct queue_address {
  std::int64_t pid = 0;     ///< a process that holds it (Linux: by descriptor)
  std::int32_t fd = -1;     ///< that process's descriptor of it, or -1 for a named queue
  std::uint64_t token = 0;  ///< the queue's random identity, checked when it is opened
  std::string name;         ///< its name, for a named queue
};

/// The shared memory of one queue, mapped in this process (implemented in lib/).
class queue_block {
 public:
  /// Creates a queue of `capacity` messages of at most `max_message` bytes each.
  static std::shared_ptr<queue_block> create(std::size_t capacity, std::size_t max_message);
  /// Maps the queue at `address` (one that arrived with a task or a process's arguments);
  /// throws `serialization_error` if it cannot be reached.
  static std::shared_ptr<queue_block> open(const queue_address& address);
  virtual ~queue_block() = default;

  /// Returns how another process finds this queue.
  virtual queue_address address() const = 0;
  /// Puts the `n` bytes at `data` as one message, waiting until `deadline` at most for room;
  /// false if the deadline passed. Throws `queue_closed` once the queue is closed.
  virtual bool put(const char* data, std::size_t n,
                   std::chrono::steady_clock::time_point deadline) = 0;
  /// Takes the next message into `out`, waiting until `deadline` at most; false if the
  /// deadline passed. Throws `queue_closed` once the queue is closed and drained.
  virtual bool get(std::vector<char>& out, std::chrono::steady_clock::time_point deadline) = 0;
  /// Closes the queue for every participant.
  virtual void close() noexcept = 0;
  /// Returns the number of messages the queue holds at most.
  virtual std::size_t capacity() const noexcept = 0;
  /// Returns the largest message, in bytes.
  virtual std::size_t max_message() const noexcept = 0;
  /// Returns how many messages were taken by consumers that died while taking them.
  virtual std::uint64_t lost() const noexcept = 0;
};

}  // namespace detail

/// A bounded multi-producer multi-consumer queue in shared memory, passed to processes and
/// pool tasks as a handle (copies share the queue, like `shared_array`).
///
/// A participant that dies at any instruction, inside `put` or `get`, never blocks the others
/// for good and never corrupts the queue: a message is wholly in the queue or not at all, and
/// one that was completely put is delivered exactly once, unless the consumer that took it died
/// while taking it: then it is counted in `lost()`. The memory goes with the last process that
/// holds the queue; a handle can be passed on while the process that passes it runs.
template <class T>
class queue {
  static_assert(serializable<T>,
                "mproc::queue<T> needs a serializable T (it is encoded into shared memory)");
  static_assert(std::is_default_constructible_v<T>,
                "mproc::queue<T> needs a default-constructible T (get builds one to decode into)");

 public:
  /// The largest message by default, encoded: 1 MiB.
  static constexpr std::size_t default_max_message = std::size_t{1} << 20;

  /// Creates an empty handle, which refers to no queue (what a task decodes into).
  queue() = default;
  /// Creates a queue of `capacity` messages, each at most `max_message` bytes once encoded.
  /// Throws `std::invalid_argument` for a capacity of 0, `mproc::error` if the system refuses.
  explicit queue(std::size_t capacity, std::size_t max_message = default_max_message)
      : block_(detail::queue_block::create(capacity, max_message)) {}

  /// Puts `value`, waiting for room. Throws `queue_closed` if the queue is closed,
  /// `std::length_error` if `value` is larger than the queue's largest message.
  void put(const T& value) { (void)put_until(value, forever()); }
  /// Puts `value` if there is room within `limit`; returns whether it did.
  bool put_for(const T& value, std::chrono::milliseconds limit) {
    return put_until(value, std::chrono::steady_clock::now() + limit);
  }
  /// Takes the next value, waiting for one. Throws `queue_closed` once the queue is closed and
  /// drained.
  T get() { return *get_until(forever()); }
  /// Takes the next value if one comes within `limit`.
  std::optional<T> get_for(std::chrono::milliseconds limit) {
    return get_until(std::chrono::steady_clock::now() + limit);
  }
  /// Takes the next value if there is one now.
  std::optional<T> try_get() { return get_until(std::chrono::steady_clock::now()); }
  /// Closes the queue for everyone: puts fail from now on, and gets once it is drained.
  void close() { block().close(); }

  /// Returns the number of messages the queue holds at most.
  std::size_t capacity() const { return block().capacity(); }
  /// Returns how many messages were taken by consumers that died while taking them.
  std::uint64_t lost() const { return block().lost(); }

 private:
  friend class boost::serialization::access;
  friend struct mproc::access;

  static std::chrono::steady_clock::time_point forever() {
    return std::chrono::steady_clock::time_point::max();
  }
  detail::queue_block& block() const {
    if (block_ == nullptr) throw std::logic_error("mproc::queue: this handle refers to no queue");
    return *block_;
  }

  bool put_until(const T& value, std::chrono::steady_clock::time_point deadline) {
    std::vector<char> bytes;
    detail::with_writer<detail::raw_codec<T>>(bytes, [&](auto& out) { detail::put(out, value); });
    detail::queue_block& b = block();
    if (bytes.size() > b.max_message()) {
      throw std::length_error("mproc::queue: a message of " + std::to_string(bytes.size()) +
                              " bytes is larger than this queue's largest (" +
                              std::to_string(b.max_message()) +
                              "); create the queue with a larger max_message, or pass the data "
                              "in a shared_array");
    }
    return b.put(bytes.data(), bytes.size(), deadline);
  }

  std::optional<T> get_until(std::chrono::steady_clock::time_point deadline) {
    std::vector<char> bytes;
    if (!block().get(bytes, deadline)) return std::nullopt;
    std::optional<T> value(std::in_place);
    detail::with_reader<detail::raw_codec<T>>(bytes.data(), bytes.size(),
                                              [&](auto& in) { detail::get(in, *value); });
    return value;
  }

  template <class Archive>
  void save(Archive& ar, const unsigned int /*version*/) const {
    const detail::queue_address a = block_ ? block_->address() : detail::queue_address{};
    ar << a.pid << a.fd << a.token << a.name;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int /*version*/) {
    detail::queue_address a;
    ar >> a.pid >> a.fd >> a.token >> a.name;
    block_ = a.token == 0 ? nullptr : detail::queue_block::open(a);
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()

  friend class detail::raw_writer;
  friend class detail::raw_reader;
  void raw_put(detail::raw_writer& out) const {
    const detail::queue_address a = block_ ? block_->address() : detail::queue_address{};
    out.put(a.pid);
    out.put(a.fd);
    out.put(a.token);
    out.put(a.name);
  }
  void raw_get(detail::raw_reader& in) {
    detail::queue_address a;
    in.get(a.pid);
    in.get(a.fd);
    in.get(a.token);
    in.get(a.name);
    block_ = a.token == 0 ? nullptr : detail::queue_block::open(a);
  }

  std::shared_ptr<detail::queue_block> block_;
};

namespace detail {
template <class T>
struct raw_self<queue<T>> : std::true_type {};
}  // namespace detail

}  // namespace mproc
