#pragma once

namespace mproc {

/// Returns whether `mproc::init` has run in this process.
bool initialized() noexcept;

}  // namespace mproc
