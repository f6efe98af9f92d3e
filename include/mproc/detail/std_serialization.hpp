#pragma once
// Boost.Serialization 1.81 has no support for std::tuple, std::optional, std::variant and
// std::monostate; these overloads add it. They live in boost::serialization so that Boost's own
// dispatch (which calls serialize() with an argument from that namespace) finds them.

#include <boost/archive/archive_exception.hpp>
#include <boost/serialization/split_free.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>

namespace boost::serialization {

/// Serializes each element of a tuple in order.
template <class Archive, class... Ts>
void serialize(Archive& ar, std::tuple<Ts...>& t, const unsigned int /*version*/) {
  std::apply([&ar](auto&... elements) { (ar & ... & elements); }, t);
}

/// Writes a presence flag, then the value if there is one.
template <class Archive, class T>
void save(Archive& ar, const std::optional<T>& o, const unsigned int /*version*/) {
  const bool has_value = o.has_value();
  ar << has_value;
  if (has_value) ar << *o;
}

/// Reads what `save` wrote for a `std::optional`.
template <class Archive, class T>
void load(Archive& ar, std::optional<T>& o, const unsigned int /*version*/) {
  bool has_value = false;
  ar >> has_value;
  if (!has_value) {
    o.reset();
    return;
  }
  ar >> o.emplace();
}

/// Dispatches a `std::optional` to `save`/`load`.
template <class Archive, class T>
void serialize(Archive& ar, std::optional<T>& o, const unsigned int version) {
  split_free(ar, o, version);
}

/// Serializes nothing: a monostate has no state.
template <class Archive>
void serialize(Archive& /*ar*/, std::monostate& /*m*/, const unsigned int /*version*/) {}

/// Writes the active index, then the active alternative.
template <class Archive, class... Ts>
void save(Archive& ar, const std::variant<Ts...>& v, const unsigned int /*version*/) {
  const auto index = static_cast<std::uint32_t>(v.index());
  ar << index;
  std::visit([&ar](const auto& alternative) { ar << alternative; }, v);
}

/// Reads what `save` wrote for a `std::variant`; an out-of-range index is an archive error.
template <class Archive, class... Ts>
void load(Archive& ar, std::variant<Ts...>& v, const unsigned int /*version*/) {
  std::uint32_t index = 0;
  ar >> index;
  if (index >= sizeof...(Ts)) {
    throw boost::archive::archive_exception(boost::archive::archive_exception::input_stream_error,
                                            "variant index out of range");
  }
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((index == I ? (ar >> v.template emplace<I>(), true) : false) || ...);
  }
  (std::index_sequence_for<Ts...>{});
}

/// Dispatches a `std::variant` to `save`/`load`.
template <class Archive, class... Ts>
void serialize(Archive& ar, std::variant<Ts...>& v, const unsigned int version) {
  split_free(ar, v, version);
}

}  // namespace boost::serialization
