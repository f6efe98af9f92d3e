#include "launch/refusal.hpp"

#include "platform/process.hpp"
#include "platform/refusal.hpp"

#include <mproc/errors.hpp>

#include <thread>

namespace mproc::launch {

std::exception_ptr refusal_error(const std::string& action, const std::error_code& ec) {
  return std::make_exception_ptr(start_error(action + ": " + platform::explain_refusal(ec)));
}

void pause_for(std::chrono::milliseconds d) noexcept { std::this_thread::sleep_for(d); }

std::error_code spawn_while_busy(const std::string& exe, const std::vector<std::string>& args,
                                 const std::vector<std::pair<int, int>>& inherit, int& pid,
                                 int& tries) {
  return retry_while_busy(
      [&]() -> std::error_code {
        try {
          pid = platform::spawn_process(exe, args, inherit);
          return {};
        } catch (const std::system_error& e) {
          return e.code();
        }
      },
      &tries);
}

}  // namespace mproc::launch
