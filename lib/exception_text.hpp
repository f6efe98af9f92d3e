#pragma once
// The words for an exception in a message: its readable type name and its message.

#include <exception>
#include <string>
#include <typeinfo>

namespace mproc::detail {

/// Returns a readable name for `t`: "ns::error" with every compiler (MSVC's read "class ...").
std::string readable_type_name(const std::type_info& t);

/// An exception's type name and message.
struct exception_text {
  std::string type;
  std::string message;
};

/// Returns the type name and message of `e`; a non-standard exception has the message
/// "a non-standard exception".
exception_text describe_exception(const std::exception_ptr& e);

}  // namespace mproc::detail
