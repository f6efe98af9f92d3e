#pragma once
// The operating system's refusals, in words a user can act on.

#include <string>
#include <system_error>

namespace mproc::platform {

/// Returns why the system refused and what to do, for the end of an error message:
/// "Resource temporarily unavailable (EAGAIN): a limit on processes and threads is reached ...".
std::string explain_refusal(const std::error_code& ec);

}  // namespace mproc::platform
