#pragma once
// Hints to the virtual memory system about ranges mproc is about to fill or keep private
// (memory.posix.cpp, memory.windows.cpp).

#include <cstddef>
#include <cstdint>
#include <system_error>

namespace mproc::platform {

/// Maps the pages of [p, p + bytes), about to be filled, in one call rather than one fault per
/// page, and in large pages where the system offers them. A hint; small ranges are left alone.
void prefault(void* p, std::size_t bytes) noexcept;

/// Asks for [p, p + bytes), an aligned range of fresh memory, to be mapped in large pages when
/// first touched. A hint.
void advise_large_pages(void* p, std::size_t bytes) noexcept;

/// Leaves [p, p + bytes), a range of private memory, out of processes forked from now on: a
/// forked child would share its pages copy-on-write, and every write here would copy one.
void exclude_from_fork(void* p, std::size_t bytes) noexcept;
/// Undoes `exclude_from_fork` for [p, p + bytes), before the memory goes back to the heap.
void include_in_fork(void* p, std::size_t bytes) noexcept;

/// Another process whose memory this one reads and writes: its pid, or on Windows a handle.
using memory_peer = std::intptr_t;
/// A `memory_peer` that is no process.
inline constexpr memory_peer no_memory_peer = -1;
/// Opens the process `pid` (a child of this one that has not ended) for reading and writing
/// its memory; on failure returns why and leaves `peer` alone.
std::error_code open_memory_peer(int pid, memory_peer& peer) noexcept;
/// Closes what `open_memory_peer` opened.
void close_memory_peer(memory_peer peer) noexcept;

/// Returns why copies with another process's memory are slower than shared memory here (under
/// Wine, whose server makes each one), or null where they are not.
const char* slow_process_memory() noexcept;

/// Copies `bytes` bytes at `remote` in the process `peer` to `local`. ESRCH: it has ended;
/// EFAULT: nothing is mapped there; EPERM, ENOSYS: the system refuses.
std::error_code read_process_memory(memory_peer peer, std::uint64_t remote, void* local,
                                    std::size_t bytes) noexcept;
/// Copies `bytes` bytes from `local` to `remote` in the process `peer`; errors as for reading.
std::error_code write_process_memory(memory_peer peer, std::uint64_t remote, const void* local,
                                     std::size_t bytes) noexcept;

/// Reserves `bytes` of address space, readable and writable, whose pages exist only once
/// written (and again after `discard_memory`); null if the system refuses, or would charge
/// the whole size at once (Linux's strict overcommit accounting).
void* reserve_memory(std::size_t bytes) noexcept;
/// Whether another process may write into reserved memory at once (its pages come when
/// written); where not (Windows), only into what `commit_memory` committed.
bool memory_maps_on_write() noexcept;
/// Makes [p, p + bytes), the start of a reservation, writable by other processes; false if the
/// system refuses.
bool commit_memory(void* p, std::size_t bytes) noexcept;
/// Gives the pages of [p, p + bytes) back to the system; the range stays reserved.
void discard_memory(void* p, std::size_t bytes) noexcept;
/// Makes the heap keep large blocks that are freed, for the next allocation of their size
/// (a worker's tasks allocate arguments and results of the same size call after call).
void keep_freed_memory() noexcept;
/// Gives the heap's free memory back to the system.
void return_freed_memory() noexcept;

/// Returns a reservation from `reserve_memory`.
void release_memory(void* p, std::size_t bytes) noexcept;

}  // namespace mproc::platform
