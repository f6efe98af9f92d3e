#include "channel/channel.hpp"

#include "platform/process.hpp"
#include "platform/shared_memory.hpp"
#include "platform/wake.hpp"

#include <mproc/detail/codec.hpp>
#include <mproc/errors.hpp>

#include <algorithm>
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

endpoint segment::parent_endpoint() {
  const peer_state peer{&header_->worker_gone, &corrupt_};
  return endpoint{ring(header_->to_worker, to_worker_data_, capacity_, peer, wakers_for_to_worker(),
                       to_worker_written_, seen_to_worker_read_),
                  ring(header_->to_parent, to_parent_data_, capacity_, peer, wakers_for_to_parent(),
                       to_parent_read_, seen_to_parent_read_)};
}

endpoint segment::worker_endpoint() {
  const peer_state peer{&header_->parent_gone, &corrupt_};
  return endpoint{ring(header_->to_parent, to_parent_data_, capacity_, peer, wakers_for_to_parent(),
                       to_parent_written_, seen_to_parent_read_),
                  ring(header_->to_worker, to_worker_data_, capacity_, peer, wakers_for_to_worker(),
                       to_worker_read_, seen_to_worker_read_)};
}

io_status endpoint::send(message_header header, const char* payload) {
  seal(header);
  if (const io_status s = out.write(reinterpret_cast<const char*>(&header), sizeof header);
      s != io_status::ok) {
    return s;
  }
  return out.write(payload, static_cast<std::size_t>(header.size));
}

io_status endpoint::receive(message_header& header, std::vector<char>& payload,
                            std::chrono::steady_clock::time_point deadline) {
  if (const io_status s = in.read(reinterpret_cast<char*>(&header), sizeof header, deadline);
      s != io_status::ok) {
    return s;
  }
  check(header);
  payload.clear();
  // Up to this much is trusted at once; beyond it, memory grows with what actually arrives.
  constexpr std::uint64_t trusted = std::uint64_t{128} << 20;
  try {
    std::uint64_t remaining = header.size;
    while (remaining > 0) {
      const std::size_t at = payload.size();
      const auto step = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining, std::max<std::uint64_t>(trusted, at)));
      detail::grow_buffer(payload, at + step);
      if (const io_status s = in.read_append(payload, step, deadline); s != io_status::ok) {
        return s;
      }
      remaining -= step;
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
