#pragma once

#include <string_view>
#include <vector>

namespace mproc {

/// How a pool starts its worker processes.
enum class start_method {
  automatic,  ///< `MPROC_START_METHOD` if set; else spawn on Windows, fork while single-threaded on
              ///< POSIX.
  fork,       ///< POSIX fork of the calling process (fast; unsafe once the process has threads).
  spawn,  ///< Re-executes the current program; the child enters the worker loop in `mproc::init`.
  forkserver  ///< Forks workers from a clean single-threaded server process (POSIX).
};

/// Returns the canonical name of a start method: "auto", "fork", "spawn" or "forkserver".
std::string_view to_string(start_method method) noexcept;

/// Parses "auto", "automatic", "fork", "spawn" or "forkserver".
///
/// Throws `std::invalid_argument` naming the valid names for anything else.
start_method parse_start_method(std::string_view name);

/// Returns the start methods this platform can use (Windows: spawn only).
std::vector<start_method> available_start_methods();

}  // namespace mproc
