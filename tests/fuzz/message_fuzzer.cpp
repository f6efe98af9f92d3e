// Fuzzes what the parent reads from a worker: message headers, failure reports, the receive
// path of a real channel fed with arbitrary bytes, and the rings as the parent sees them while
// a hostile worker overwrites their shared words and data. Nothing may crash; a malformed
// message must end as serialization_error (or a timeout for one that is incomplete), and a
// broken ring as `corrupt`.

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

  // A hostile worker: the first bytes overwrite the shared words the parent reads (the capacity,
  // the positions the worker publishes and the ones the parent publishes), between operations of
  // the parent; the rest fill the ring. Nothing may crash or read outside the segment.
  auto hostile = ch::segment::create(capacity, ec);
  if (!hostile) std::abort();
  hostile->unlink();
  ch::segment_header& shared = hostile->header();
  ch::endpoint victim = hostile->parent_endpoint();
  std::size_t used = 0;
  const auto next_word = [&](std::uint64_t& out) {
    if (size - used < sizeof out) return false;
    std::memcpy(&out, data + used, sizeof out);
    used += sizeof out;
    return true;
  };
  std::uint64_t word = 0;
  const std::vector<char> task(capacity / 2 + 100, 't');  // wraps the ring on its second send
  for (int round = 0; round < 4 && next_word(word); ++round) {
    switch (word % 5) {
      case 0:
        shared.capacity = word >> 3;
        break;
      case 1:
        shared.to_parent.write_pos.store(word >> 3);
        break;
      case 2:
        shared.to_worker.read_pos.store(word >> 3);
        break;
      case 3:
        shared.to_parent.read_pos.store(word >> 3);
        break;
      default:
        shared.to_worker.write_pos.store(word >> 3);
        break;
    }
    const std::size_t chunk = std::min<std::size_t>(size - used, capacity);
    // The ring the parent reads: after the 4 KiB control page and the ring to the worker.
    std::memcpy(reinterpret_cast<char*>(&shared) + 4096 + capacity, data + used, chunk);
    try {
      const ch::io_status s = victim.receive(h, payload, std::chrono::steady_clock::now());
      if (s == ch::io_status::ok && payload.size() != h.size) __builtin_trap();
    } catch (const mproc::serialization_error&) {
    }
    ch::message_header out;
    out.kind = ch::message_kind::task;
    out.size = task.size();
    // Only what fits: a send waits for room as long as the worker lives.
    if (victim.fits(task.size())) {
      const ch::io_status s = victim.send(out, task.data());
      if (s != ch::io_status::ok && s != ch::io_status::corrupt) __builtin_trap();
    }
  }
  if (hostile->corrupt() && victim.out.free_space() != 0) __builtin_trap();
  return 0;
}
