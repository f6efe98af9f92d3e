#include "channel/message.hpp"

#include <mproc/errors.hpp>

#include <cstring>

namespace mproc::channel {

namespace {

std::uint32_t checksum_of(message_header h) noexcept {
  h.checksum = 0;
  std::uint32_t c = 2166136261U;  // FNV-1a over the header's bytes
  unsigned char bytes[sizeof h];
  std::memcpy(bytes, &h, sizeof h);
  for (const unsigned char b : bytes) {
    c ^= b;
    c *= 16777619U;
  }
  return c;
}

void append(std::vector<char>& out, const std::string& s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  const std::size_t at = out.size();
  out.resize(at + sizeof n + s.size());
  std::memcpy(out.data() + at, &n, sizeof n);
  std::memcpy(out.data() + at + sizeof n, s.data(), s.size());
}

std::string take(const char* data, std::size_t size, std::size_t& at) {
  std::uint32_t n = 0;
  if (size - at < sizeof n) throw serialization_error("cannot read a failure report: truncated");
  std::memcpy(&n, data + at, sizeof n);
  at += sizeof n;
  if (size - at < n) throw serialization_error("cannot read a failure report: truncated");
  std::string s(data + at, n);
  at += n;
  return s;
}

}  // namespace

void seal(message_header& h) noexcept {
  h.magic = message_header::magic_value;
  h.checksum = checksum_of(h);
}

void check(const message_header& h) {
  if (h.magic != message_header::magic_value) {
    throw serialization_error("cannot read a message: bad magic number (the channel is corrupt)");
  }
  if (h.checksum != checksum_of(h)) {
    throw serialization_error(
        "cannot read a message: bad header checksum (the channel is corrupt)");
  }
  const auto kind = static_cast<std::uint16_t>(h.kind);
  if (kind < static_cast<std::uint16_t>(message_kind::hello) ||
      kind > static_cast<std::uint16_t>(message_kind::run)) {
    throw serialization_error("cannot read a message: unknown kind " + std::to_string(kind));
  }
}

std::vector<char> encode_failure(const std::string& type, const std::string& message) {
  std::vector<char> out;
  append(out, type);
  append(out, message);
  return out;
}

failure_text decode_failure(const char* data, std::size_t size) {
  std::size_t at = 0;
  failure_text f;
  f.type = take(data, size, at);
  f.message = take(data, size, at);
  if (at != size) throw serialization_error("cannot read a failure report: trailing bytes");
  return f;
}

}  // namespace mproc::channel
