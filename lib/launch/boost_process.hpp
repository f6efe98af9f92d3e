#pragma once
// Boost.Process v2 (1.81), as mproc uses it: include this instead of its headers, in one .cpp
// per platform (they cost seconds to compile). Measured pitfalls and the recipe:
// ../shared/research/boost_process.md, and README.md, "Dependencies".

// std::filesystem, not Boost.Filesystem: Debian has no compiled Boost.Filesystem 1.81, and the
// cross build has none either.
#ifndef BOOST_PROCESS_USE_STD_FS
#define BOOST_PROCESS_USE_STD_FS 1  // NOLINT(readability-identifier-naming): Boost's name
#endif
// Before any of its headers: config.hpp names boost::optional, and default_launcher.hpp and
// environment.hpp name decay, is_constructible and remove_pointer unqualified, which only
// Boost.TypeTraits supplies (found through namespace boost).
#include <boost/optional.hpp>
#include <boost/type_traits.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/process.hpp>

namespace mproc::launch {

namespace bp2 = boost::process::v2;

/// The one type of process object: converting a `basic_process` to another executor type
/// drops its handle on Windows, and the source's destructor then kills the child (1.81).
using owned_process = bp2::basic_process<boost::asio::io_context::executor_type>;

}  // namespace mproc::launch
