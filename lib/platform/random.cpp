// What the platform layer builds on its per-platform calls, the same everywhere.
#include "platform/process.hpp"

namespace mproc::platform {

std::error_code random_hex(std::size_t bytes, std::string& out) {
  std::vector<unsigned char> raw(bytes);
  if (const std::error_code ec = random_bytes(raw.data(), raw.size())) return ec;
  static constexpr char digits[] = "0123456789abcdef";
  out.clear();
  out.reserve(bytes * 2);
  for (const unsigned char b : raw) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return {};
}

}  // namespace mproc::platform
