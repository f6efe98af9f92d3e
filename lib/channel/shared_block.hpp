#pragma once
// How a process keeps the shared arrays of its tasks mapped (mproc::shared_array's storage is
// declared in the public header; this is the part only the library uses).

namespace mproc::detail {

/// Makes this process keep the arrays of its recent tasks mapped between tasks (a worker does,
/// and unmaps them with `release_recent_views` when idle).
void keep_recent_views() noexcept;

/// Unmaps the arrays kept for the next tasks.
void release_recent_views();

}  // namespace mproc::detail
