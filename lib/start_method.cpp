#include <mproc/start_method.hpp>

#include <stdexcept>
#include <string>

namespace mproc {

std::string_view to_string(start_method method) noexcept {
  switch (method) {
    case start_method::automatic:
      return "auto";
    case start_method::fork:
      return "fork";
    case start_method::spawn:
      return "spawn";
    case start_method::forkserver:
      return "forkserver";
  }
  return "unknown";
}

start_method parse_start_method(std::string_view name) {
  if (name == "auto" || name == "automatic") return start_method::automatic;
  if (name == "fork") return start_method::fork;
  if (name == "spawn") return start_method::spawn;
  if (name == "forkserver") return start_method::forkserver;
  throw std::invalid_argument("unknown start method '" + std::string(name) +
                              "'; valid names: auto, automatic, fork, spawn, forkserver");
}

std::vector<start_method> available_start_methods() {
#if defined(_WIN32)
  return {start_method::spawn};
#else
  return {start_method::fork, start_method::spawn, start_method::forkserver};
#endif
}

}  // namespace mproc
