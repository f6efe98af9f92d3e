#pragma once
// Boost.Process v2 as mproc uses it. Version 1.81 with BOOST_PROCESS_USE_STD_FS uses
// boost::optional and <type_traits> without including them, so they come first.

#include <boost/optional.hpp>
#include <type_traits>

#include <boost/asio/io_context.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
