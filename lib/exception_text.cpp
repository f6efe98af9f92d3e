#include "exception_text.hpp"

#include <boost/core/demangle.hpp>

#include <string_view>

#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)
#include <cxxabi.h>
#endif

namespace mproc::detail {

std::string readable_type_name(const std::type_info& t) {
  std::string name = boost::core::demangle(t.name());
  for (const std::string_view prefix : {"class ", "struct "}) {
    if (name.rfind(prefix, 0) == 0) name.erase(0, prefix.size());
  }
  return name;
}

exception_text describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    // The dynamic type, which typeid gives for a polymorphic reference.
    return {readable_type_name(typeid(x)), x.what()};
  } catch (...) {
#if defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)
    if (const std::type_info* t = abi::__cxa_current_exception_type()) {
      return {readable_type_name(*t), "a non-standard exception"};
    }
#endif
    return {"unknown exception", "a non-standard exception"};
  }
}

}  // namespace mproc::detail
