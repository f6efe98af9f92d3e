#pragma once

#include <mproc/detail/std_serialization.hpp>

#include <boost/serialization/array.hpp>
#include <boost/serialization/deque.hpp>
#include <boost/serialization/forward_list.hpp>
#include <boost/serialization/list.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/serialization.hpp>
#include <boost/serialization/set.hpp>
#include <boost/serialization/string.hpp>
#include <boost/serialization/unordered_map.hpp>
#include <boost/serialization/unordered_set.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>

#include <array>
#include <cstddef>
#include <deque>
#include <forward_list>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace mproc {

/// Grants the `serializable` check access to a private `serialize`, `save` or `load`.
///
/// A class whose serialization functions are private declares `friend struct mproc::access;`
/// next to Boost's `friend class boost::serialization::access;`.
struct access {
  /// Names the member `serialize` of `T` (declaration only, for the check).
  template <class A, class T>
  static auto member_serialize(A& a, T& t) -> decltype(t.serialize(a, 0U));
  /// Names the member `save` of `T` (declaration only, for the check).
  template <class A, class T>
  static auto member_save(A& a, const T& t) -> decltype(t.save(a, 0U));
  /// Names the member `load` of `T` (declaration only, for the check).
  template <class A, class T>
  static auto member_load(A& a, T& t) -> decltype(t.load(a, 0U));
};

namespace detail::probe {

// An archive type used only in unevaluated checks. Its template argument comes from
// boost::serialization so that argument-dependent lookup also sees the non-intrusive overloads
// users (and Boost) declare in that namespace.
template <class Tag>
struct archive {};
using probe_archive = archive<boost::serialization::version_type>;

// A sentinel as generic as Boost's catch-all `serialize`: when only those two match, the call is
// ambiguous and the check fails; a user overload for a specific type is more specialised and wins.
template <class A, class T>
void serialize(A& ar, T& t, const unsigned int version);

template <class T>
concept has_user_serialization = requires(probe_archive& ar, T& t) {
  access::member_serialize(ar, t);
}
|| requires(probe_archive& ar, T& t) {
  access::member_save(ar, t);
  access::member_load(ar, t);
}
|| requires(probe_archive& ar, T& t) { serialize(ar, t, 0U); };

}  // namespace detail::probe

namespace detail {

// Standard library types are checked element by element; everything else must bring its own
// Boost.Serialization functions.
template <class T>
struct is_serializable
    : std::bool_constant<std::is_arithmetic_v<T> || std::is_enum_v<T> ||
                         (std::is_class_v<T> && probe::has_user_serialization<T>)> {};

template <class T>
inline constexpr bool is_serializable_v = is_serializable<std::remove_cv_t<T>>::value;

template <class... Ts>
struct all_serializable : std::bool_constant<(is_serializable_v<Ts> && ...)> {};

template <class C, class Tr, class A>
struct is_serializable<std::basic_string<C, Tr, A>> : std::is_arithmetic<C> {};
template <class T, std::size_t N>
struct is_serializable<std::array<T, N>> : all_serializable<T> {};
template <class T, std::size_t N>
struct is_serializable<T[N]> : all_serializable<T> {};
template <class T, class A>
struct is_serializable<std::vector<T, A>> : all_serializable<T> {};
template <class T, class A>
struct is_serializable<std::list<T, A>> : all_serializable<T> {};
template <class T, class A>
struct is_serializable<std::forward_list<T, A>> : all_serializable<T> {};
template <class T, class A>
struct is_serializable<std::deque<T, A>> : all_serializable<T> {};
template <class T, class C, class A>
struct is_serializable<std::set<T, C, A>> : all_serializable<T> {};
template <class T, class C, class A>
struct is_serializable<std::multiset<T, C, A>> : all_serializable<T> {};
template <class T, class H, class E, class A>
struct is_serializable<std::unordered_set<T, H, E, A>> : all_serializable<T> {};
template <class T, class H, class E, class A>
struct is_serializable<std::unordered_multiset<T, H, E, A>> : all_serializable<T> {};
template <class K, class V, class C, class A>
struct is_serializable<std::map<K, V, C, A>> : all_serializable<K, V> {};
template <class K, class V, class C, class A>
struct is_serializable<std::multimap<K, V, C, A>> : all_serializable<K, V> {};
template <class K, class V, class H, class E, class A>
struct is_serializable<std::unordered_map<K, V, H, E, A>> : all_serializable<K, V> {};
template <class K, class V, class H, class E, class A>
struct is_serializable<std::unordered_multimap<K, V, H, E, A>> : all_serializable<K, V> {};
template <class A, class B>
struct is_serializable<std::pair<A, B>> : all_serializable<A, B> {};
template <class... Ts>
struct is_serializable<std::tuple<Ts...>> : all_serializable<Ts...> {};
template <class T>
struct is_serializable<std::optional<T>> : all_serializable<T> {};
template <class... Ts>
struct is_serializable<std::variant<Ts...>> : all_serializable<Ts...> {};
template <>
struct is_serializable<std::monostate> : std::true_type {};

}  // namespace detail

/// True for types whose values can cross a process boundary through Boost.Serialization.
///
/// Arithmetic and enum types, `std::string`, the standard containers, `std::pair`, `std::tuple`,
/// `std::optional` and `std::variant` of serializable types, and classes with a Boost.Serialization
/// `serialize` (member, or free and found by ADL or in `boost::serialization`) or `save`/`load`.
/// Pointers, references, `std::mutex`, `std::thread`, streams and classes without a serialization
/// function are not.
template <class T>
concept serializable =
    !std::is_pointer_v<std::remove_cvref_t<T>> && detail::is_serializable_v<std::remove_cvref_t<T>>;

}  // namespace mproc
