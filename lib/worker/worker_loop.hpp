#pragma once
// What runs inside a worker process.

#include "channel/channel.hpp"

#include <memory>
#include <string>

namespace mproc::worker {

/// Runs the worker loop on `seg` until told to stop or the parent dies, then exits the process.
[[noreturn]] void serve(std::shared_ptr<channel::segment> seg, int parent);

/// Attaches to the segment named `name` and serves it (a spawned worker, from `mproc::init`).
[[noreturn]] void serve_spawned(const std::string& name);

/// Returns whether this process runs the worker loop.
bool active() noexcept;

}  // namespace mproc::worker
