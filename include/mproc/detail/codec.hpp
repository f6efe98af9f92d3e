#pragma once
// How task arguments and results become bytes. Arithmetic and enum values, and std::string and
// std::vector of arithmetic values, travel as raw bytes (a vector or string as one block);
// everything else goes through a Boost binary archive. Both ends decide from the types alone,
// so the parent and the worker always agree.

#include <mproc/detail/archive.hpp>

#include <boost/archive/archive_exception.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc::detail {

/// Maps the memory of a large buffer about to be filled ahead of time (a hint): fresh memory
/// faulted in page by page costs more than copying into it on some machines.
void prefault_buffer(void* p, std::size_t bytes) noexcept;

/// Makes room in vector `v` for `n` elements; a new allocation is prefaulted.
template <class V>
void reserve_large(V& v, std::size_t n) {
  if (n <= v.capacity()) return;
  v.reserve(n);
  if constexpr (requires { v.data(); }) {  // not std::vector<bool>, whose bits have no data()
    prefault_buffer(v.data(), v.capacity() * sizeof(typename V::value_type));
  }
}

/// Byte buffers at least this large are kept for reuse (see `large_buffer`).
inline constexpr std::size_t spare_buffer_min = std::size_t{1} << 10;

/// Returns an empty byte buffer with room for `n` bytes: a spare one when one fits.
std::vector<char> large_buffer(std::size_t n);
/// Offers a byte buffer that is no longer needed for reuse by `large_buffer`.
void recycle_buffer(std::vector<char> buffer) noexcept;

/// Makes room in byte buffer `v` for `n` bytes in all, keeping its contents.
inline void grow_buffer(std::vector<char>& v, std::size_t n) {
  if (n <= v.capacity()) return;
  if (n < spare_buffer_min) {
    v.reserve(n);
    return;
  }
  std::vector<char> bigger = large_buffer(n);
  bigger.insert(bigger.end(), v.begin(), v.end());
  recycle_buffer(std::exchange(v, std::move(bigger)));
}

template <class T>
struct raw_block : std::false_type {};
// Not std::vector<bool>, which is not contiguous.
template <class U>
struct raw_block<std::vector<U>>
    : std::bool_constant<std::is_arithmetic_v<U> && !std::is_same_v<U, bool>> {};
template <>
struct raw_block<std::string> : std::true_type {};

/// How a result that is one block of elements (`std::vector` of arithmetic values,
/// `std::string`) is read straight into its own memory: the raw codec writes it as its element
/// count (8 bytes) followed by the elements.
struct block_result {
  std::size_t element_size;
  /// Returns a new, empty result with room reserved for `elements` elements.
  std::shared_ptr<void> (*make)(std::uint64_t elements);
  /// Resizes the result `object` to `elements` elements (its new memory mapped ahead) and
  /// returns the address of the first.
  char* (*resize)(void* object, std::uint64_t elements);
};

/// Returns how a result of type `T` is read straight into its memory, or null for a type that
/// is not one block.
template <class T>
const block_result* block_result_of() noexcept {
  if constexpr (raw_block<T>::value) {
    static constexpr block_result type{
        sizeof(typename T::value_type),
        [](std::uint64_t elements) -> std::shared_ptr<void> {
          auto v = std::make_shared<T>();
          v->reserve(static_cast<std::size_t>(elements));
          return v;
        },
        [](void* object, std::uint64_t elements) {
          auto& v = *static_cast<T*>(object);
          const auto n = static_cast<std::size_t>(elements);
          if (n > v.capacity()) v.reserve(n);
          if (n > v.size()) {
            prefault_buffer(v.data() + v.size(), (n - v.size()) * sizeof(typename T::value_type));
          }
          v.resize(n);
          return reinterpret_cast<char*>(v.data());
        }};
    return &type;
  } else {
    return nullptr;
  }
}

/// In a worker: a block of a result left in the result's own memory instead of being copied
/// into its encoded bytes, where the channel can lend it to the application as it is.
struct lent_block {
  std::size_t min_size = SIZE_MAX;    ///< set by the worker: blocks from this size are lent
  std::shared_ptr<const void> owner;  ///< the result that holds the block; null if none is lent
  const char* data = nullptr;         ///< the block's bytes, in `owner`
  std::size_t size = 0;               ///< their number
  std::size_t at = 0;                 ///< where in the encoded bytes the block goes
};

/// Types that write themselves as raw bytes with `raw_put(raw_writer&)` and read themselves
/// back with `raw_get(raw_reader&)`: handles such as `shared_array`.
template <class T>
struct raw_self : std::false_type {};

/// Whether values of `T` travel as raw bytes instead of through a Boost archive.
template <class T>
inline constexpr bool raw_codec =
    std::is_arithmetic_v<T> || std::is_enum_v<T> || raw_block<T>::value || raw_self<T>::value;

template <class Tuple>
struct raw_tuple;
template <class... P>
struct raw_tuple<std::tuple<P...>> : std::bool_constant<(raw_codec<P> && ...)> {};

/// Whether a call with these (decayed) argument types travels as raw bytes.
template <class Arguments>
inline constexpr bool raw_arguments = raw_tuple<Arguments>::value;

/// Raw bytes that end too soon or announce more than they hold.
struct raw_format_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Appends values to a byte vector as raw bytes.
class raw_writer {
 public:
  explicit raw_writer(std::vector<char>& out) : out_(out) {}

  template <class T>
  void put(const T& value) {
    if constexpr (raw_block<T>::value) {
      const auto n = static_cast<std::uint64_t>(value.size());
      append(&n, sizeof n);
      const auto* bytes = reinterpret_cast<const char*>(value.data());
      const std::size_t size = value.size() * sizeof(typename T::value_type);
      make_room(size);
      out_.insert(out_.end(), bytes, bytes + size);  // one pass: no zero-fill first
    } else if constexpr (raw_self<T>::value) {
      value.raw_put(*this);
    } else {
      append(&value, sizeof value);
    }
  }

 private:
  void make_room(std::size_t n) {
    const std::size_t at = out_.size();
    if (at + n > out_.capacity()) grow_buffer(out_, std::max(at + n, 2 * out_.capacity()));
  }
  void append(const void* p, std::size_t n) {
    make_room(n);
    const auto* bytes = static_cast<const char*>(p);
    out_.insert(out_.end(), bytes, bytes + n);
  }
  std::vector<char>& out_;
};

/// Reads back what a `raw_writer` wrote; throws `raw_format_error` on malformed bytes.
class raw_reader {
 public:
  raw_reader(const char* data, std::size_t size) : p_(data), end_(data + size) {}

  template <class T>
  void get(T& value) {
    if constexpr (raw_block<T>::value) {
      std::uint64_t n = 0;
      take(&n, sizeof n);
      using element = typename T::value_type;
      // Checked against what is left before any allocation: a corrupt count cannot allocate.
      if (n > static_cast<std::uint64_t>(end_ - p_) / sizeof(element)) {
        throw raw_format_error("a block announces more bytes than the message holds");
      }
      value.clear();
      reserve_large(value, static_cast<std::size_t>(n));
      if constexpr (sizeof(element) == 1) {
        // Bytes need no alignment: copied in one pass, without a zero-fill first.
        const auto* first = reinterpret_cast<const element*>(p_);
        value.assign(first, first + n);
        p_ += n;
      } else {
        value.resize(static_cast<std::size_t>(n));
        take(value.data(), value.size() * sizeof(element));
      }
    } else if constexpr (raw_self<T>::value) {
      value.raw_get(*this);
    } else {
      take(&value, sizeof value);
    }
  }

 private:
  void take(void* p, std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_)) throw raw_format_error("the message ends early");
    if (n != 0) std::memcpy(p, p_, n);
    p_ += n;
  }
  const char* p_;
  const char* end_;
};

/// Writes `value` to an archive or a raw writer.
template <class T>
void put(output_archive& out, const T& value) {
  out << value;
}
template <class T>
void put(raw_writer& out, const T& value) {
  out.put(value);
}
/// Reads `value` from an archive or a raw reader.
template <class T>
void get(input_archive& in, T& value) {
  in >> value;
}
template <class T>
void get(raw_reader& in, T& value) {
  in.get(value);
}

/// Calls `f` with a writer that appends to `out` in the format chosen for values of `Raw`.
template <bool Raw, class F>
void with_writer(std::vector<char>& out, F&& f) {
  if constexpr (Raw) {
    raw_writer w(out);
    f(w);
  } else {
    vector_sink sink(out);
    output_archive w(sink, archive_flags);
    f(w);
  }
}

/// Calls `f` with a reader over `size` bytes at `data` in the format chosen for `Raw` values.
/// Throws what the reader throws, also while the archive is being set up.
template <bool Raw, class F>
void with_reader(const char* data, std::size_t size, F&& f) {
  if constexpr (Raw) {
    raw_reader r(data, size);
    f(r);
  } else {
    span_source source(data, size);
    input_archive r(source, archive_flags);
    f(r);
  }
}

}  // namespace mproc::detail
