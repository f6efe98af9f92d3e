#include "channel/channel.hpp"

#include "assert.hpp"
#include "platform/memory.hpp"
#include "platform/process.hpp"
#include "platform/refusal.hpp"
#include "platform/shared_memory.hpp"
#include "platform/wake.hpp"

#include <mproc/detail/codec.hpp>
#include <mproc/errors.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string_view>

namespace mproc::channel {

namespace {
constexpr std::size_t header_space = 4096;  // keeps the ring data page-aligned
}

struct segment::mapping {
  platform::shared_memory memory;
};

std::error_code segment::attach_wakers(bool create) {
  // Named after the segment: whoever can open the segment can open these (Windows only; the
  // futex needs none).
  std::error_code ec;
  for (std::size_t i = 0; i < wakers_.size() && !ec; ++i) {
    wakers_[i] = platform::open_wake_handle(name_ + "-w" + std::to_string(i), create, ec);
  }
  return ec;
}

namespace {

// Cleared at the first refusal of memory without a name (a sandbox's seccomp, an old kernel),
// after which segments are named. Atomic, not locked: a fork copies it as it is.
std::atomic<bool> anonymous_memory{true};

constexpr std::string_view descriptor_prefix = "fd:";

}  // namespace

bool segment::anonymous() noexcept { return anonymous_memory.load(std::memory_order_relaxed); }

std::string segment::descriptor_address(int fd) {
  return std::string(descriptor_prefix) + std::to_string(fd);
}

int segment::descriptor() const noexcept {
  return mapping_ != nullptr ? mapping_->memory.descriptor() : -1;
}

std::shared_ptr<segment> segment::create(std::size_t capacity, std::error_code& ec, reach how) {
  if (capacity == 0) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
  }
  std::shared_ptr<segment> s(new segment());
  const std::size_t bytes = header_space + 2 * capacity;
  platform::shared_memory memory;
  bool named = how == reach::named || !anonymous();
  if (!named) {
    memory = platform::shared_memory::create_anonymous(bytes, ec);
    if (ec == std::errc::function_not_supported) {
      anonymous_memory.store(false);
      named = true;
    }
  }
  if (named) {
    std::string suffix;
    if ((ec = platform::random_hex(12, suffix))) return nullptr;
    s->name_ = platform::segment_prefix() + suffix;
    memory = platform::shared_memory::create(s->name_, bytes, ec);
    s->linked_ = !ec;  // from here on the destructor removes the name
  }
  if (ec) return nullptr;
  s->mapping_ = std::make_unique<mapping>(mapping{std::move(memory)});
  if ((ec = s->attach_wakers(true))) return nullptr;
  auto* base = static_cast<char*>(s->mapping_->memory.address());
  s->header_ = new (base) segment_header();
  s->header_->capacity = capacity;
  s->capacity_ = capacity;
  s->to_worker_data_ = base + header_space;
  s->to_parent_data_ = base + header_space + capacity;
  return s;
}

std::shared_ptr<segment> segment::open(const std::string& address, std::error_code& ec) {
  std::shared_ptr<segment> s(new segment());
  platform::shared_memory memory;
  if (address.rfind(descriptor_prefix, 0) == 0) {
    const std::string digits = address.substr(descriptor_prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
        digits.size() > 9) {
      ec = std::make_error_code(std::errc::invalid_argument);
      return nullptr;
    }
    memory = platform::shared_memory::adopt(std::stoi(digits), ec);
  } else {
    s->name_ = address;
    memory = platform::shared_memory::open(address, ec);
    s->linked_ = !ec;  // this side may remove the name too
  }
  if (ec) return nullptr;
  s->mapping_ = std::make_unique<mapping>(mapping{std::move(memory)});
  if ((ec = s->attach_wakers(false))) return nullptr;
  auto* base = static_cast<char*>(s->mapping_->memory.address());
  s->header_ = std::launder(reinterpret_cast<segment_header*>(base));
  // Read once, checked against the mapping, and kept: later changes to it mean nothing here.
  const std::uint64_t capacity = s->header_->capacity;
  const std::size_t size = s->mapping_->memory.size();
  if (capacity == 0 || size < header_space || capacity > (size - header_space) / 2) {
    ec = std::make_error_code(std::errc::bad_message);
    return nullptr;
  }
  s->capacity_ = capacity;
  s->to_worker_data_ = base + header_space;
  s->to_parent_data_ = base + header_space + capacity;
  return s;
}

segment::~segment() {
  unlink();
  platform::close_memory_peer(direct_.peer);
  for (const platform::wake_handle w : wakers_) platform::close_wake_handle(w);
}

void segment::unlink() noexcept {
  if (mapping_ != nullptr) mapping_->memory.release_descriptor();
  if (!linked_) return;
  linked_ = false;
  platform::shared_memory::remove(name_);
}

void segment::mark_worker_gone() noexcept {
  header_->worker_gone.store(1, std::memory_order_seq_cst);
  const ring_wakers to_worker = wakers_for_to_worker();
  const ring_wakers to_parent = wakers_for_to_parent();
  for (const auto& [r, w] :
       {std::pair{&header_->to_worker, to_worker}, std::pair{&header_->to_parent, to_parent}}) {
    r->data_signal.fetch_add(1);
    r->space_signal.fetch_add(1);
    platform::wake_word(r->data_signal, w.data);
    platform::wake_word(r->space_signal, w.space);
  }
}

namespace {

// Writes `line` to stderr under MPROC_DEBUG, the first time `told` is set only.
void tell_once(std::atomic<bool>& told, const std::string& line) {
  if (std::getenv("MPROC_DEBUG") == nullptr || told.exchange(true)) return;
  std::fprintf(stderr, "mproc: %s\n", line.c_str());
}

// Up to this much of a payload is trusted at once; beyond it, memory grows with what arrives.
constexpr std::uint64_t trusted_bytes = std::uint64_t{128} << 20;

}  // namespace

namespace {

constexpr const char* direct_copies_variable = "MPROC_DIRECT_COPIES";

// What MPROC_DIRECT_COPIES asks for: "1" direct copies wherever the system allows them, "0"
// none; unset or empty, where they are faster than shared memory. Null for any other value.
const char* direct_copies_setting() {
  const char* value = std::getenv(direct_copies_variable);
  if (value == nullptr || *value == '\0') return "";
  const std::string_view v(value);
  return v == "0" || v == "1" ? value : nullptr;
}

}  // namespace

void check_direct_copies_setting() {
  (void)platform::slow_process_memory();  // settled here, before the pool's threads run
  if (direct_copies_setting() == nullptr) {
    throw std::invalid_argument(std::string(direct_copies_variable) + ": '" +
                                std::getenv(direct_copies_variable) +
                                "' is neither 0 (large messages go through shared memory) nor 1 "
                                "(copied directly where the system allows it)");
  }
}

std::error_code segment::try_direct_copies(int pid, const std::string& secret) {
  const char* setting = direct_copies_setting();
  const std::string_view wanted = setting != nullptr ? setting : "";
  const char* slow = platform::slow_process_memory();
  if (wanted == "0" || (wanted.empty() && slow != nullptr)) {
    static std::atomic<bool> told{false};
    tell_once(told, "large messages go through shared memory: " +
                        (wanted == "0" ? std::string(direct_copies_variable) + "=0"
                                       : std::string(slow) + " (" + direct_copies_variable +
                                             "=1 copies directly all the same)"));
    return std::make_error_code(std::errc::operation_canceled);
  }
  platform::memory_peer peer = platform::no_memory_peer;
  std::error_code ec = platform::open_memory_peer(pid, peer);
  std::string copy(secret.size(), '\0');
  if (!ec) {
    ec = platform::read_process_memory(peer, header_->probe_address.load(std::memory_order_acquire),
                                       copy.data(), copy.size());
  }
  if (!ec && copy != secret) ec = std::make_error_code(std::errc::bad_address);
  if (ec) {
    platform::close_memory_peer(peer);
    static std::atomic<bool> told{false};
    tell_once(told,
              "large messages go through shared memory: the system refuses direct copies "
              "to and from worker " +
                  std::to_string(pid) + " (reading its memory: " + platform::explain_refusal(ec) +
                  ")");
    return ec;
  }
  direct_ = direct_link{peer, true, 0, header_};
  header_->direct.store(1, std::memory_order_release);
  static std::atomic<bool> told{false};
  tell_once(told, "messages from " + std::to_string(direct_threshold) +
                      " bytes are copied directly between processes");
  return {};
}

endpoint segment::parent_endpoint() {
  const peer_state peer{&header_->worker_gone, &corrupt_};
  return endpoint{ring(header_->to_worker, to_worker_data_, capacity_, peer, wakers_for_to_worker(),
                       to_worker_written_, seen_to_worker_read_),
                  ring(header_->to_parent, to_parent_data_, capacity_, peer, wakers_for_to_parent(),
                       to_parent_read_, seen_to_parent_read_),
                  &direct_};
}

endpoint segment::worker_endpoint() {
  const peer_state peer{&header_->parent_gone, &corrupt_};
  return endpoint{ring(header_->to_parent, to_parent_data_, capacity_, peer, wakers_for_to_parent(),
                       to_parent_written_, seen_to_parent_read_),
                  ring(header_->to_worker, to_worker_data_, capacity_, peer, wakers_for_to_worker(),
                       to_worker_read_, seen_to_worker_read_)};
}

io_status endpoint::send(message_header header, const char* payload) {
  if (direct != nullptr && header.kind == message_kind::task && header.size >= direct_threshold) {
    if (const std::optional<io_status> s = land(header, payload)) return *s;
  }
  seal(header);
  if (const io_status s = out.write(reinterpret_cast<const char*>(&header), sizeof header);
      s != io_status::ok) {
    return s;
  }
  return out.write(payload, static_cast<std::size_t>(header.size));
}

// Copies a large task's payload into the worker's landing area and sends its header alone.
// Nothing (the ring takes it) while the area holds a task not yet decoded, for a payload larger
// than the area, or once the system refused a copy. A pid is reused only after the pid space
// wrapped around: the worker's death between the check and the copy is an ESRCH.
std::optional<io_status> endpoint::land(message_header& header, const char* payload) {
  direct_link& d = *direct;
  if (!d.landing) return std::nullopt;
  segment_header& shared = *d.header;
  if (header.size > shared.landing_capacity.load(std::memory_order_acquire) ||
      shared.landed_done.load(std::memory_order_acquire) != d.landed) {
    return std::nullopt;
  }
  if (shared.worker_gone.load(std::memory_order_acquire) != 0) return io_status::peer_gone;
  const std::error_code ec =
      platform::write_process_memory(d.peer, shared.landing_address.load(std::memory_order_acquire),
                                     payload, static_cast<std::size_t>(header.size));
  if (ec == std::errc::no_such_process) return io_status::peer_gone;
  if (ec) {
    d.landing = false;  // EFAULT: the worker's area is not where it said; EPERM: refused
    return std::nullopt;
  }
  ++d.landed;
  header.code = static_cast<std::uint16_t>(header.code | code_direct);
  seal(header);
  return out.write(reinterpret_cast<const char*>(&header), sizeof header);
}

io_status endpoint::lend(message_header header, std::initializer_list<piece> pieces) {
  // What the ring carries after the header: the number of pieces, then each one's address and
  // size (empty pieces left out).
  std::array<std::uint64_t, 1 + 2 * max_lent_pieces> list{};
  std::size_t n = 0;
  for (const piece& p : pieces) {
    if (p.size == 0) continue;
    MPROC_ASSERT(n < max_lent_pieces, "a result lent in too many pieces");
    list[1 + 2 * n] = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p.data));
    list[2 + 2 * n] = p.size;
    ++n;
  }
  list[0] = n;
  header.code = static_cast<std::uint16_t>(header.code | code_direct);
  seal(header);
  if (const io_status s = out.write(reinterpret_cast<const char*>(&header), sizeof header);
      s != io_status::ok) {
    return s;
  }
  return out.write(reinterpret_cast<const char*>(list.data()), (1 + 2 * n) * sizeof list[0]);
}

namespace {

// A piece of a lent result in the worker's memory.
struct remote_piece {
  std::uint64_t address = 0;
  std::uint64_t size = 0;
};

// Reads `size` bytes of the lent result made of `pieces`, from byte `from` of it on, into `to`.
std::error_code read_lent(platform::memory_peer peer, const std::vector<remote_piece>& pieces,
                          std::uint64_t from, char* to, std::uint64_t size) {
  for (const remote_piece& p : pieces) {
    if (size == 0) break;
    if (from >= p.size) {
      from -= p.size;
      continue;
    }
    const std::uint64_t n = std::min(p.size - from, size);
    if (const std::error_code ec = platform::read_process_memory(peer, p.address + from, to,
                                                                 static_cast<std::size_t>(n))) {
      return ec;
    }
    to += n;
    size -= n;
    from = 0;
  }
  return {};
}

// The size of the next read of a message of `size` bytes of which `done` have arrived: what is
// left, up to what is trusted or has arrived already, so that memory grows with what arrives.
std::uint64_t next_step(std::uint64_t size, std::uint64_t done) {
  return std::min<std::uint64_t>(size - done, std::max<std::uint64_t>(trusted_bytes, done));
}

}  // namespace

// Reads a result its worker lent: the ring has the addresses of its pieces in the worker's
// memory. A result of one call of the sink's type goes straight into a new result object;
// anything else into `payload`. Memory grows with what the reads bring, as for a ring's
// payload; the worker may reuse the pieces once `lent_released` says so.
io_status endpoint::fetch(message_header& header, std::vector<char>& payload,
                          std::chrono::steady_clock::time_point deadline, result_sink* sink) {
  std::uint64_t count = 0;
  if (const io_status s = in.read(reinterpret_cast<char*>(&count), sizeof count, deadline);
      s != io_status::ok) {
    return s;
  }
  if (direct == nullptr || direct->peer == platform::no_memory_peer) {
    throw serialization_error(
        "cannot read a message: its worker lent a result that was not agreed (the channel is "
        "corrupt)");
  }
  if (count == 0 || count > max_lent_pieces) {
    throw serialization_error("cannot read a message: its worker lent a result in " +
                              std::to_string(count) + " pieces (the channel is corrupt)");
  }
  std::vector<remote_piece> pieces(static_cast<std::size_t>(count));
  if (const io_status s = in.read(reinterpret_cast<char*>(pieces.data()),
                                  pieces.size() * sizeof(remote_piece), deadline);
      s != io_status::ok) {
    return s;
  }
  std::uint64_t total = 0;
  for (const remote_piece& p : pieces) {
    if (p.size > header.size - total) total = header.size + 1;  // also stops an overflow
    if (total > header.size) break;
    total += p.size;
  }
  if (total != header.size) {
    throw serialization_error(
        "cannot read a message: the pieces of a lent result do not add up to its size (the "
        "channel is corrupt)");
  }
  const platform::memory_peer peer = direct->peer;
  const auto failed = [&](const std::string& why) {
    return serialization_error("cannot read a result of " + std::to_string(header.size) +
                               " bytes from its worker's memory: " + why);
  };
  try {
    std::error_code ec;
    const detail::block_result* type = sink != nullptr ? sink->type : nullptr;
    std::uint64_t elements = 0;
    if (type != nullptr && header.count == 1 && header.size >= sizeof elements &&
        (header.size - sizeof elements) % type->element_size == 0) {
      ec = read_lent(peer, pieces, 0, reinterpret_cast<char*>(&elements), sizeof elements);
    }
    const std::uint64_t body = header.size - sizeof elements;
    if (!ec && type != nullptr && elements != 0 && elements == body / type->element_size) {
      // Room for what is trusted at first; it grows with what arrives.
      std::shared_ptr<void> object =
          type->make(std::min<std::uint64_t>(elements, trusted_bytes / type->element_size));
      for (std::uint64_t done = 0; done < body && !ec;) {
        const std::uint64_t step = next_step(body, done);  // a multiple of the element size
        char* data = type->resize(object.get(), (done + step) / type->element_size);
        ec = read_lent(peer, pieces, sizeof elements + done, data + done, step);
        done += step;
      }
      if (!ec) sink->object = std::move(object);
    } else {
      for (std::uint64_t done = 0; done < header.size && !ec;) {
        const std::uint64_t step = next_step(header.size, done);
        const auto at = static_cast<std::size_t>(done);
        detail::grow_buffer(payload, at + static_cast<std::size_t>(step));
        payload.resize(at + static_cast<std::size_t>(step));
        ec = read_lent(peer, pieces, done, payload.data() + at, step);
        done += step;
      }
    }
    if (ec == std::errc::no_such_process) return io_status::peer_gone;
    if (ec) throw failed(platform::explain_refusal(ec));
  } catch (const std::bad_alloc&) {
    throw failed("out of memory");
  } catch (const std::length_error&) {
    throw failed("too large");
  }
  direct->header->lent_released.store(header.id + 1, std::memory_order_release);
  header.code = static_cast<std::uint16_t>(header.code & ~code_direct);
  return io_status::ok;
}

io_status endpoint::receive(message_header& header, std::vector<char>& payload,
                            std::chrono::steady_clock::time_point deadline, result_sink* sink) {
  if (const io_status s = in.read(reinterpret_cast<char*>(&header), sizeof header, deadline);
      s != io_status::ok) {
    return s;
  }
  check(header);
  payload.clear();
  if ((header.code & code_direct) != 0) {
    if (header.kind == message_kind::task) return io_status::ok;  // it is in the landing area
    if (header.kind == message_kind::result) return fetch(header, payload, deadline, sink);
    throw serialization_error("cannot read a message: a direct copy of an unexpected kind");
  }
  try {
    while (payload.size() < header.size) {
      const std::size_t at = payload.size();
      const auto step = static_cast<std::size_t>(next_step(header.size, at));
      detail::grow_buffer(payload, at + step);
      if (const io_status s = in.read_append(payload, step, deadline); s != io_status::ok) {
        return s;
      }
    }
  } catch (const std::bad_alloc&) {
    throw serialization_error("cannot receive a message of " + std::to_string(header.size) +
                              " bytes: out of memory");
  } catch (const std::length_error&) {
    throw serialization_error("cannot receive a message of " + std::to_string(header.size) +
                              " bytes: too large");
  }
  return io_status::ok;
}

}  // namespace mproc::channel
