#pragma once
// A single-producer/single-consumer byte ring in shared memory. It holds no lock: a process that
// dies in the middle of a read or write leaves nothing that blocks the other side, which learns
// of the death through the `gone` flag and a wake-up.
//
// Nothing the peer can write is trusted for an index or a size: each side keeps its own
// position and the capacity in its own memory, publishes its position to the peer, and checks
// the peer's (at most `capacity` apart from its own) before using it. A peer that breaks that
// makes the ring `corrupt` for good.

#include "platform/wake.hpp"
#include "spin.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace mproc::channel {

/// Positions and wake-up words of one ring; lives in shared memory.
struct ring_control {
  alignas(64) std::atomic<std::uint64_t> write_pos{0};
  std::atomic<std::uint32_t> data_signal{0};  // bumped after each write; the reader sleeps on it
  std::atomic<std::uint32_t> reader_sleeping{0};
  alignas(64) std::atomic<std::uint64_t> read_pos{0};
  std::atomic<std::uint32_t> space_signal{0};  // bumped after each read; the writer sleeps on it
  std::atomic<std::uint32_t> writer_sleeping{0};
};

/// The outcome of a blocking ring operation.
enum class io_status {
  ok,
  timed_out,
  peer_gone,
  corrupt,  ///< the peer wrote a position that no ring can have: its memory is not to be trusted
};

/// Tells a waiting side whether the other side is still there, and whether it broke the ring.
struct peer_state {
  /// Set (and both signals bumped) by whoever learns that the peer died.
  std::atomic<std::uint32_t>* gone = nullptr;
  /// In this process's own memory: set once the peer broke either ring of the segment.
  std::atomic<bool>* corrupt = nullptr;
};

/// The wake-up objects that go with a ring's two signal words (see `platform::wake_handle`).
struct ring_wakers {
  platform::wake_handle data = -1;   ///< with `data_signal`: the reader sleeps on it
  platform::wake_handle space = -1;  ///< with `space_signal`: the writer sleeps on it
};

/// One side's view of a ring: either its writer or its reader.
class ring {
 public:
  /// `own_pos` is this side's position (the writer's or the reader's), kept in this process's
  /// memory, and `capacity` is the one this process gave or checked. `seen_read_pos` is the
  /// writer's last look at the reader's position, also its own: while it shows room, a write
  /// does not touch the line the reader updates.
  ring(ring_control& control, char* data, std::uint64_t capacity, peer_state peer,
       ring_wakers wakers, std::uint64_t& own_pos, std::uint64_t& seen_read_pos) noexcept
      : c_(control),
        data_(data),
        capacity_(capacity),
        peer_(peer),
        wakers_(wakers),
        own_pos_(own_pos),
        seen_read_pos_(seen_read_pos) {}

  /// Writes all `n` bytes, waiting for space as needed.
  io_status write(const char* p, std::size_t n) {
    if (peer_.corrupt->load(std::memory_order_relaxed)) return io_status::corrupt;
    while (n > 0) {
      const std::uint64_t wp = own_pos_;
      std::uint64_t space = capacity_ - (wp - seen_read_pos_);
      for (;;) {
        if (space >= n) break;
        const std::uint64_t rp = c_.read_pos.load(std::memory_order_acquire);
        if (wp - rp > capacity_) return broken();  // ahead of the writer, or too far behind
        seen_read_pos_ = rp;
        space = capacity_ - (wp - seen_read_pos_);
        if (space > 0) break;
        if (const io_status s = sleep(
                c_.space_signal, c_.writer_sleeping, wakers_.space,
                [&] { return capacity_ - (wp - c_.read_pos.load(std::memory_order_seq_cst)) > 0; },
                no_deadline());
            s != io_status::ok) {
          return s;
        }
      }
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(space, n));
      copy_in(wp, p, chunk);
      own_pos_ = wp + chunk;
      c_.write_pos.store(own_pos_, std::memory_order_seq_cst);
      signal(c_.data_signal, c_.reader_sleeping, wakers_.data);
      p += chunk;
      n -= chunk;
    }
    return io_status::ok;
  }

  /// Returns how many bytes a write could add now without waiting (the writer's view; none
  /// once the peer broke the ring).
  std::uint64_t free_space() const noexcept {
    const std::uint64_t used = own_pos_ - c_.read_pos.load(std::memory_order_acquire);
    return peer_.corrupt->load(std::memory_order_relaxed) || used > capacity_ ? 0
                                                                              : capacity_ - used;
  }

  /// Reads exactly `n` bytes, waiting for data until `deadline`.
  io_status read(char* p, std::size_t n, std::chrono::steady_clock::time_point deadline) {
    return consume(n, deadline, [&p](const char* from, std::size_t k) {
      std::memcpy(p, from, k);
      p += k;
    });
  }

  /// Reads exactly `n` bytes onto the end of `out`, waiting for data until `deadline`.
  io_status read_append(std::vector<char>& out, std::size_t n,
                        std::chrono::steady_clock::time_point deadline) {
    return consume(n, deadline, [&out](const char* from, std::size_t k) {
      out.insert(out.end(), from, from + k);
    });
  }

  /// Waits until there is something to read, or until `deadline`.
  io_status wait_readable(std::chrono::steady_clock::time_point deadline) {
    if (peer_.corrupt->load(std::memory_order_relaxed)) return io_status::corrupt;
    const std::uint64_t rp = own_pos_;
    while (c_.write_pos.load(std::memory_order_acquire) == rp) {
      if (const io_status s = sleep(
              c_.data_signal, c_.reader_sleeping, wakers_.data,
              [&] { return c_.write_pos.load(std::memory_order_seq_cst) != rp; }, deadline);
          s != io_status::ok) {
        return s;
      }
    }
    return io_status::ok;
  }

  static std::chrono::steady_clock::time_point no_deadline() noexcept {
    return std::chrono::steady_clock::time_point::max();
  }

 private:
  // Passes the next `n` bytes to `take(pointer, count)` as they arrive, in contiguous pieces.
  template <class Take>
  io_status consume(std::size_t n, std::chrono::steady_clock::time_point deadline, Take take) {
    if (peer_.corrupt->load(std::memory_order_relaxed)) return io_status::corrupt;
    while (n > 0) {
      const std::uint64_t rp = own_pos_;
      std::uint64_t avail = 0;
      for (;;) {
        avail = c_.write_pos.load(std::memory_order_acquire) - rp;
        if (avail > capacity_) return broken();  // behind the reader, or more than the ring holds
        if (avail > 0) break;
        if (const io_status s = sleep(
                c_.data_signal, c_.reader_sleeping, wakers_.data,
                [&] { return c_.write_pos.load(std::memory_order_seq_cst) - rp > 0; }, deadline);
            s != io_status::ok) {
          return s;
        }
      }
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(avail, n));
      const auto at = static_cast<std::size_t>(rp % capacity_);
      const std::size_t first =
          std::min<std::size_t>(chunk, static_cast<std::size_t>(capacity_) - at);
      take(data_ + at, first);
      if (chunk > first) take(data_, chunk - first);
      own_pos_ = rp + chunk;
      c_.read_pos.store(own_pos_, std::memory_order_seq_cst);
      signal(c_.space_signal, c_.writer_sleeping, wakers_.space);
      n -= chunk;
    }
    return io_status::ok;
  }

  io_status broken() noexcept {
    peer_.corrupt->store(true, std::memory_order_relaxed);
    return io_status::corrupt;
  }

  void copy_in(std::uint64_t pos, const char* p, std::size_t n) noexcept {
    const auto at = static_cast<std::size_t>(pos % capacity_);
    const std::size_t first = std::min<std::size_t>(n, static_cast<std::size_t>(capacity_) - at);
    std::memcpy(data_ + at, p, first);
    std::memcpy(data_, p + first, n - first);
  }

  // Publishing side of the sleep protocol: position stored (seq_cst) before the signal is
  // bumped and the sleeping flag read, so a sleeper either sees the new position or is woken.
  static void signal(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeping,
                     platform::wake_handle waker) {
    word.fetch_add(1, std::memory_order_seq_cst);
    if (sleeping.load(std::memory_order_seq_cst) != 0) platform::wake_word(word, waker);
  }

  template <class Ready>
  io_status sleep(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleeping,
                  platform::wake_handle waker, Ready ready,
                  std::chrono::steady_clock::time_point deadline) {
    // What a peer wrote before it went is still read: the answer of a worker that exits (or
    // crashes) right after sending it is its task's answer.
    if (peer_.gone->load(std::memory_order_acquire) != 0) {
      return ready() ? io_status::ok : io_status::peer_gone;
    }
    // One spinner per thread: each thread has one role (a driver, a worker), whose waits are
    // alike.
    thread_local spinner spin;
    if (spin.spin([&] { return ready() || peer_.gone->load(std::memory_order_relaxed) != 0; })) {
      return ready() ? io_status::ok : io_status::peer_gone;
    }
    sleeping.store(1, std::memory_order_seq_cst);
    const std::uint32_t seen = word.load(std::memory_order_seq_cst);
    io_status result = io_status::ok;
    // `gone` is checked again after `seen` is loaded: a peer marked gone after the spin, whose
    // bump of the word and wake-up both came before that load, would otherwise leave this
    // thread asleep on a word that no one will change again.
    if (!ready() && peer_.gone->load(std::memory_order_seq_cst) == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) {
        result = io_status::timed_out;
      } else {
        auto timeout = std::chrono::nanoseconds(-1);
        if (deadline != no_deadline()) timeout = deadline - now;
        platform::wait_word(word, seen, timeout, waker);
      }
    }
    sleeping.store(0, std::memory_order_relaxed);
    if (result == io_status::ok && peer_.gone->load(std::memory_order_acquire) != 0 && !ready()) {
      return io_status::peer_gone;
    }
    return result;
  }

  ring_control& c_;
  char* data_;
  std::uint64_t capacity_;
  peer_state peer_;
  ring_wakers wakers_;
  std::uint64_t& own_pos_;        // this side's position; the copy in `c_` is for the peer
  std::uint64_t& seen_read_pos_;  // only the ring's one writer uses it
};

}  // namespace mproc::channel
