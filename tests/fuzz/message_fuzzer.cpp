// Fuzzes what the parent reads from a worker: message headers, failure reports, and the
// receive path of a real channel fed with arbitrary bytes. Nothing may crash; a malformed
// message must end as serialization_error (or a timeout for one that is incomplete).

#include "channel/channel.hpp"

#include <mproc/errors.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace ch = mproc::channel;
  const char* bytes = reinterpret_cast<const char*>(data);

  if (size >= sizeof(ch::message_header)) {
    ch::message_header h;
    std::memcpy(&h, data, sizeof h);
    try {
      ch::check(h);
    } catch (const mproc::serialization_error&) {
    }
  }
  try {
    const ch::failure_text f = ch::decode_failure(bytes, size);
    if (f.type.size() + f.message.size() + 8 != size) __builtin_trap();
  } catch (const mproc::serialization_error&) {
  }

  // The bytes arrive on a ring as if a worker had written them; the parent reads a message.
  constexpr std::size_t capacity = 1 << 16;
  std::error_code ec;
  auto seg = ch::segment::create(capacity, ec);
  if (!seg) std::abort();
  seg->unlink();
  ch::endpoint worker = seg->worker_endpoint();
  ch::endpoint parent = seg->parent_endpoint();
  if (worker.out.write(bytes, std::min(size, capacity)) != ch::io_status::ok) __builtin_trap();
  ch::message_header h;
  std::vector<char> payload;
  try {
    while (parent.receive(h, payload, std::chrono::steady_clock::now()) == ch::io_status::ok) {
      if (payload.size() != h.size) __builtin_trap();
    }
  } catch (const mproc::serialization_error&) {
  }
  return 0;
}
