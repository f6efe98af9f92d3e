#pragma once
// Names the compiler gives functions and types: the same in every process running the same
// binary, so they serve as task identities and in error messages.

#include <cstddef>
#include <string_view>

namespace mproc::detail {

/// Returns the name of the function `F` as the compiler spells it; the same in every process
/// running the same binary, whatever its load address.
template <auto F>
constexpr std::string_view task_name() noexcept {
#if defined(_MSC_VER) && !defined(__clang__)
  constexpr std::string_view s = __FUNCSIG__;  // "... task_name<&ns::work>(void) noexcept"
  constexpr std::size_t begin = s.find("task_name<") + 10;
  constexpr std::size_t end = s.rfind(">(void)");
#else
  constexpr std::string_view s = __PRETTY_FUNCTION__;  // "... [with auto F = ns::work; ...]"
  constexpr std::size_t begin = s.find("F = ") + 4;
  constexpr std::size_t end = s.find_first_of(";]", begin);
#endif
  return s.substr(begin, end - begin);
}

/// Returns the name of the type `T` as the compiler spells it ("std::vector<int>").
template <class T>
constexpr std::string_view type_name() noexcept {
#if defined(_MSC_VER) && !defined(__clang__)
  constexpr std::string_view s = __FUNCSIG__;  // "... type_name<class ns::point>(void) noexcept"
  constexpr std::size_t begin = s.find("type_name<") + 10;
  constexpr std::size_t end = s.rfind(">(void)");
#else
  constexpr std::string_view s = __PRETTY_FUNCTION__;  // "... [with T = ns::point; ...]"
  constexpr std::size_t begin = s.find("T = ") + 4;
  constexpr std::size_t end = s.find_first_of(";]", begin);
#endif
  return s.substr(begin, end - begin);
}

}  // namespace mproc::detail
