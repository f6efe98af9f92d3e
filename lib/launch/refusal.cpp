#include "launch/refusal.hpp"

#include "platform/refusal.hpp"

#include <mproc/errors.hpp>

#include <thread>

namespace mproc::launch {

std::exception_ptr refusal_error(const std::string& action, const std::error_code& ec) {
  return std::make_exception_ptr(start_error(action + ": " + platform::explain_refusal(ec)));
}

void pause_for(std::chrono::milliseconds d) noexcept { std::this_thread::sleep_for(d); }

}  // namespace mproc::launch
