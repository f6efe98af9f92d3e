#pragma once
// Local stream sockets that carry a descriptor along with bytes (SCM_RIGHTS): how a zygote gets
// the memory of the worker it forks (POSIX only, like the zygote).

#include "platform/pipe.hpp"

#include <cstddef>
#include <system_error>

namespace mproc::platform {

/// Creates a connected pair of local stream sockets, both ends closed on exec (`read` and
/// `write` name the direction they are used in).
std::error_code make_socket_pair(pipe_ends& ends) noexcept;

/// Sends all `n` bytes to the socket `fd`, with a copy of the descriptor `passed` (unless -1)
/// attached to them; false on error, also when the peer is gone (never a SIGPIPE).
bool send_all(int fd, const void* data, std::size_t n, int passed) noexcept;

/// Receives exactly `n` bytes from the socket `fd`, and sets `passed` to the descriptor sent
/// with them (closed on exec), or -1; false on end-of-file or error (`passed` is then -1).
bool receive_all(int fd, void* data, std::size_t n, int& passed) noexcept;

}  // namespace mproc::platform
