#pragma once
// What runs inside a worker process.

#include "channel/channel.hpp"

#include <mproc/detail/codec.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace mproc::worker {

/// The size of the secret a worker reads from its lifeline and proves itself with.
inline constexpr std::size_t secret_size = 32;

/// Runs the worker loop on `seg` until told to stop, then exits the process.
///
/// `lifeline` is the read end of a pipe whose write end only the application holds: the worker
/// exits as soon as it reads end-of-file (the application is gone). `secret` goes back to the
/// application in the worker's first message.
[[noreturn]] void serve(const std::shared_ptr<channel::segment>& seg, int lifeline,
                        const std::string& secret);

/// Attaches to the segment at `address` (see `channel::segment::open`) and serves it (a worker
/// forked by a zygote).
[[noreturn]] void serve_at(const std::string& address, int lifeline, const std::string& secret);

/// Serves the worker described by `token` ("<segment name>,<lifeline fd>", from the command
/// line of a spawned worker).
[[noreturn]] void serve_spawned(const std::string& token);

/// Runs the task message `task` on its `size` bytes of arguments at `args` and returns the
/// header of its answer (a result or a failure), whose payload replaces `out`; with `lent`, a
/// large block of the result may stay in its own memory (the header's size counts it).
channel::message_header answer(const channel::message_header& task, const char* args,
                               std::size_t size, std::vector<char>& out,
                               detail::lent_block* lent = nullptr);

/// Returns whether this process runs the worker loop.
bool active() noexcept;

}  // namespace mproc::worker
