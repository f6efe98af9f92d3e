#pragma once
// A single-producer/single-consumer byte ring in shared memory. It holds no lock: a process that
// dies in the middle of a read or write leaves nothing that blocks the other side, which learns
// of the death through the `gone` flag and a wake-up.

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
enum class io_status { ok, timed_out, peer_gone };

/// Tells a waiting side whether the other side is still there.
struct peer_state {
  /// Set (and both signals bumped) by whoever learns that the peer died.
  std::atomic<std::uint32_t>* gone = nullptr;
};

/// The wake-up objects that go with a ring's two signal words (see `platform::wake_handle`).
struct ring_wakers {
  platform::wake_handle data = -1;   ///< with `data_signal`: the reader sleeps on it
  platform::wake_handle space = -1;  ///< with `space_signal`: the writer sleeps on it
};

/// One side's view of a ring: either its writer or its reader.
class ring {
 public:
  /// `seen_read_pos` is the writer's last look at the reader's position, kept in the writer's
  /// own memory: while it shows room, a write does not touch the line the reader updates.
  ring(ring_control& control, char* data, std::uint64_t capacity, peer_state peer,
       ring_wakers wakers, std::uint64_t& seen_read_pos) noexcept
      : c_(control),
        data_(data),
        capacity_(capacity),
        peer_(peer),
        wakers_(wakers),
        seen_read_pos_(seen_read_pos) {}

  /// Writes all `n` bytes, waiting for space as needed.
  io_status write(const char* p, std::size_t n) {
    while (n > 0) {
      const std::uint64_t wp = c_.write_pos.load(std::memory_order_relaxed);
      std::uint64_t space = capacity_ - (wp - seen_read_pos_);
      for (;;) {
        if (space >= n) break;
        seen_read_pos_ = c_.read_pos.load(std::memory_order_acquire);
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
      c_.write_pos.store(wp + chunk, std::memory_order_seq_cst);
      signal(c_.data_signal, c_.reader_sleeping, wakers_.data);
      p += chunk;
      n -= chunk;
    }
    return io_status::ok;
  }

  /// Returns how many bytes a write could add now without waiting (the writer's view).
  std::uint64_t free_space() const noexcept {
    return capacity_ - (c_.write_pos.load(std::memory_order_relaxed) -
                        c_.read_pos.load(std::memory_order_acquire));
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
    const std::uint64_t rp = c_.read_pos.load(std::memory_order_relaxed);
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
    while (n > 0) {
      const std::uint64_t rp = c_.read_pos.load(std::memory_order_relaxed);
      std::uint64_t avail = 0;
      for (;;) {
        avail = c_.write_pos.load(std::memory_order_acquire) - rp;
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
      c_.read_pos.store(rp + chunk, std::memory_order_seq_cst);
      signal(c_.space_signal, c_.writer_sleeping, wakers_.space);
      n -= chunk;
    }
    return io_status::ok;
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
  std::uint64_t& seen_read_pos_;  // only the ring's one writer uses it
};

}  // namespace mproc::channel
