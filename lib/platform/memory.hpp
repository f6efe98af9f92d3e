#pragma once
// Hints to the virtual memory system about ranges mproc is about to fill or keep private
// (memory.posix.cpp, memory.windows.cpp).

#include <cstddef>

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

}  // namespace mproc::platform
