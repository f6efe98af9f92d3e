#include "channel/message.hpp"

#include <mproc/errors.hpp>

#include <cstring>
#include <type_traits>

namespace mproc::channel {

namespace {

static_assert(sizeof(message_header) % sizeof(std::uint64_t) == 0 &&
                  std::has_unique_object_representations_v<message_header>,
              "the header checksum reads the header as whole words without padding");

// A checksum of every field but itself: each word goes through a bijective mix, so a header
// that differs in any one word has a different state, folded to 32 bits at the end. One
// multiplication per word: a byte-wise hash took a sixth of a small task's round trip.
std::uint32_t checksum_of(message_header h) noexcept {
  h.checksum = 0;
  std::uint64_t words[sizeof h / sizeof(std::uint64_t)];
  std::memcpy(words, &h, sizeof h);
  std::uint64_t c = 0x243f6a8885a308d3ULL;
  for (const std::uint64_t w : words) {
    c = (c ^ w) * 0x9e3779b97f4a7c15ULL;
    c ^= c >> 29;
  }
  return static_cast<std::uint32_t>(c ^ (c >> 32));
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
