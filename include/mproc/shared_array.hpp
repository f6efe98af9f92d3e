#pragma once

#include <mproc/detail/codec.hpp>
#include <mproc/errors.hpp>
#include <mproc/serializable.hpp>

#include <boost/serialization/split_member.hpp>
#include <boost/serialization/string.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace mproc {

namespace detail {

/// A block of shared memory, mapped in this process (implemented in lib/).
class shared_block {
 public:
  /// Creates a zero-filled block of `bytes` bytes, owner-only, under a random name.
  static std::shared_ptr<shared_block> create(std::size_t bytes);
  /// Maps the block called `name` (a worker's view); throws `serialization_error` if it is gone.
  static std::shared_ptr<shared_block> open(const std::string& name, std::size_t bytes);
  virtual ~shared_block() = default;
  /// Returns the block's name.
  virtual const std::string& name() const noexcept = 0;
  /// Returns the mapped bytes.
  virtual void* data() noexcept = 0;
};

}  // namespace detail

/// An array in shared memory: passed to tasks as a handle (its elements are not copied), read
/// and written in place by workers and the application alike.
///
/// Copies share the elements. The memory is released when the application's last copy is
/// gone (a worker's copy keeps its own view alive until it drops it); keep the array alive until
/// the tasks given it have completed. `T` must be trivially copyable. Not synchronised: tasks
/// that write should write disjoint parts.
template <class T>
class shared_array {
  static_assert(std::is_trivially_copyable_v<T>,
                "mproc::shared_array<T> needs a trivially copyable T (it lives in raw shared "
                "memory)");

 public:
  /// Creates an empty array (what a worker decodes into).
  shared_array() = default;
  /// Allocates `n` zero-initialised elements in shared memory. Throws `std::length_error` if
  /// `n` elements do not fit in memory's address range, `mproc::error` if the system refuses.
  explicit shared_array(std::size_t n)
      : block_(detail::shared_block::create(bytes_for(n))), size_(n) {}

  /// Returns the number of elements.
  std::size_t size() const noexcept { return size_; }
  /// Returns the first element.
  T* data() noexcept { return block_ ? static_cast<T*>(block_->data()) : nullptr; }
  /// Returns the first element.
  const T* data() const noexcept {
    return block_ ? static_cast<const T*>(block_->data()) : nullptr;
  }
  /// Returns element `i` (no bounds check).
  T& operator[](std::size_t i) noexcept { return data()[i]; }
  /// Returns element `i` (no bounds check).
  const T& operator[](std::size_t i) const noexcept { return data()[i]; }
  /// Returns the elements as a span.
  std::span<T> span() noexcept { return {data(), size_}; }
  /// Returns the elements as a span.
  std::span<const T> span() const noexcept { return {data(), size_}; }
  /// Returns an iterator to the first element.
  T* begin() noexcept { return data(); }
  /// Returns an iterator past the last element.
  T* end() noexcept { return data() + size_; }

 private:
  friend class boost::serialization::access;
  friend struct mproc::access;
  template <class Archive>
  void save(Archive& ar, const unsigned int /*version*/) const {
    const std::string name = block_ ? block_->name() : std::string();
    const std::uint64_t n = size_;
    ar << name << n;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int /*version*/) {
    std::string name;
    std::uint64_t n = 0;
    ar >> name >> n;
    attach(name, n);
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()

  // The same two fields as raw bytes, for calls whose arguments all travel raw.
  friend class detail::raw_writer;
  friend class detail::raw_reader;
  void raw_put(detail::raw_writer& out) const {
    out.put(block_ ? block_->name() : std::string());
    out.put(static_cast<std::uint64_t>(size_));
  }
  void raw_get(detail::raw_reader& in) {
    std::string name;
    std::uint64_t n = 0;
    in.get(name);
    in.get(n);
    attach(name, n);
  }

  // Returns the bytes of `n` elements, checked before anything is created.
  static std::size_t bytes_for(std::size_t n) {
    if (n > SIZE_MAX / sizeof(T)) {
      throw std::length_error("mproc::shared_array: " + std::to_string(n) + " elements of " +
                              std::to_string(sizeof(T)) +
                              " bytes are more than memory's address range can hold");
    }
    return n * sizeof(T);
  }

  // Maps the array `name` of `n` elements that arrived with a task.
  void attach(const std::string& name, std::uint64_t n) {
    if (n > SIZE_MAX / sizeof(T)) {
      throw serialization_error(
          "cannot decode a shared_array: it announces more elements than memory can hold");
    }
    size_ = static_cast<std::size_t>(n);
    block_ = name.empty() ? nullptr : detail::shared_block::open(name, size_ * sizeof(T));
  }

  std::shared_ptr<detail::shared_block> block_;
  std::size_t size_ = 0;
};

namespace detail {
template <class T>
struct raw_self<shared_array<T>> : std::true_type {};
}  // namespace detail

}  // namespace mproc
