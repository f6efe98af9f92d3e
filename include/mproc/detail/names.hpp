#pragma once
// Names the compiler gives functions and types: the same in every process running the same
// binary, so they serve as task identities and in error messages.

#include <cstddef>
#include <string_view>

// The signature of the enclosing function, with its template arguments spelled out.
#if defined(_MSC_VER) && !defined(__clang__)
#define MPROC_SIGNATURE __FUNCSIG__  // "... task_name<&ns::work>(void) noexcept"
#else
#define MPROC_SIGNATURE __PRETTY_FUNCTION__  // "... task_name() [with auto F = ns::work; ...]"
#endif

namespace mproc::detail {

/// Returns the one template argument in `signature`, the `MPROC_SIGNATURE` of function
/// template `function` whose parameter is named `parameter`.
constexpr std::string_view template_argument(std::string_view signature, std::string_view function,
                                             std::string_view parameter) noexcept {
#if defined(_MSC_VER) && !defined(__clang__)
  static_cast<void>(parameter);
  const std::size_t begin = signature.find(function) + function.size() + 1;  // past '<'
  const std::size_t end = signature.rfind(">(void)");
#else
  static_cast<void>(function);
  const std::size_t begin = signature.find(parameter) + parameter.size() + 3;  // past " = "
  const std::size_t end = signature.find_first_of(";]", begin);
#endif
  return signature.substr(begin, end - begin);
}

/// Returns the name of the function `F` as the compiler spells it; the same in every process
/// running the same binary, whatever its load address.
template <auto F>
constexpr std::string_view task_name() noexcept {
  return template_argument(MPROC_SIGNATURE, "task_name", "F");
}

/// Returns the name of the type `T` as the compiler spells it ("std::vector<int>").
template <class T>
constexpr std::string_view type_name() noexcept {
  return template_argument(MPROC_SIGNATURE, "type_name", "T");
}

}  // namespace mproc::detail
