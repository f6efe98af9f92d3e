#pragma once
// What runs inside a worker process.

#include "channel/channel.hpp"

#include <cstddef>
#include <memory>
#include <string>

namespace mproc::worker {

/// The size of the secret a worker reads from its lifeline and proves itself with.
inline constexpr std::size_t secret_size = 32;

/// Runs the worker loop on `seg` until told to stop, then exits the process.
///
/// `lifeline` is the read end of a pipe whose write end only the parent holds: the worker first
/// reads its secret from it, then exits as soon as it reads end-of-file (the parent is gone).
[[noreturn]] void serve(std::shared_ptr<channel::segment> seg, int lifeline);

/// Serves the worker described by `token` ("<segment name>,<lifeline fd>", from the command
/// line of a spawned worker).
[[noreturn]] void serve_spawned(const std::string& token);

/// Returns whether this process runs the worker loop.
bool active() noexcept;

}  // namespace mproc::worker
