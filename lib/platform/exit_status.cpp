#include "platform/process.hpp"

namespace mproc::platform {

std::string exit_status::describe() const {
  if (signal) {
    return "was killed by signal " + std::to_string(*signal) + " (" + signal_name(*signal) + ")";
  }
  if (code) {
    // A code the system gave (Windows: the NTSTATUS of a crash) is shown with its meaning.
    const std::string meaning = exit_code_meaning(*code);
    if (!meaning.empty()) return "ended with " + meaning;
    return "exited with code " + std::to_string(*code);
  }
  return "ended (its exit status is unknown)";
}

}  // namespace mproc::platform
