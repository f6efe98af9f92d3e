#pragma once
// What the map family of both pools shares: how big each chunk of the input is, and the lazy
// range of results that `imap` and `imap_unordered` return.

#include <mproc/detail/task.hpp>
#include <mproc/detail/task_state.hpp>
#include <mproc/future.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace mproc::detail {

/// Picks the size of each chunk of an input whose length is unknown (or of any `imap` without a
/// chunksize): one item a chunk until a chunk has completed, then as many items as run for
/// about `target` at the time per item the latest completed chunk took, never more than
/// `largest`. That time includes the chunk's message, so it errs on the side of smaller chunks
/// and converges within a few chunks. A fixed size, when given, is used as it is.
class chunk_sizer {
 public:
  /// How long a chunk should run: long enough to amortise a message, short enough to balance.
  static constexpr std::chrono::nanoseconds target = std::chrono::milliseconds(2);
  /// The largest chunk the sizer picks.
  static constexpr std::size_t largest = std::size_t{1} << 16;

  /// Creates a sizer that always answers `fixed`, or adapts when `fixed` is 0.
  explicit chunk_sizer(std::size_t fixed = 0) noexcept : fixed_(fixed) {}

  /// Whether the size adapts to measured running times.
  bool adaptive() const noexcept { return fixed_ == 0; }

  /// Learns from a completed chunk how long its items take.
  void observe(const task_state& chunk) noexcept {
    const std::int64_t ran = chunk.ran().count();
    if (fixed_ != 0 || ran <= 0 || chunk.count() == 0) return;
    per_item_ns_ = std::max<std::int64_t>(1, ran / chunk.count());
  }

  /// Returns how many items the next chunk holds.
  std::size_t next() const noexcept {
    if (fixed_ != 0) return fixed_;
    if (per_item_ns_ == 0) return 1;
    const auto by_time =
        static_cast<std::size_t>(std::max<std::int64_t>(1, target.count() / per_item_ns_));
    return std::min(by_time, largest);
  }

 private:
  std::size_t fixed_;
  std::int64_t per_item_ns_ = 0;  // the latest completed chunk's time per item; 0: none yet
};

/// Teaches `sizer` from the chunks of a `map` that completed, oldest first (`observed` counts
/// those it has seen). An adaptive sizer first waits while `window` chunks or more are in
/// flight: the input is not cut faster than the workers measure it, and a caller that would
/// otherwise keep a core busy sending single items leaves it to them.
inline void pace(chunk_sizer& sizer, const std::vector<std::shared_ptr<task_state>>& chunks,
                 std::size_t& observed, std::size_t window) {
  if (!sizer.adaptive()) return;
  while (observed < chunks.size()) {
    const task_state& oldest = *chunks[observed];
    if (chunks.size() - observed >= window) {
      oldest.wait();
    } else if (!oldest.ready()) {
      return;
    }
    sizer.observe(oldest);
    ++observed;
  }
}

/// Cuts all of `items` into chunks for a `map` on a pool of `workers`, each sent with
/// `send(iterator&, sentinel, n)` (at most `n` items; returns its state), and returns the
/// chunks in input order: `chunksize` items each; with 0, about four chunks per worker for a
/// range of known size, and sizes from a `chunk_sizer`, paced, for one of unknown size.
template <class Range, class Send>
std::vector<std::shared_ptr<task_state>> send_chunks(Range& items, std::size_t chunksize,
                                                     std::size_t workers, Send send) {
  std::size_t fixed = chunksize;
  if constexpr (std::ranges::sized_range<Range>) {
    if (fixed == 0) fixed = default_chunksize(std::ranges::size(items), workers);
  }
  chunk_sizer sizer(fixed);
  std::vector<std::shared_ptr<task_state>> chunks;
  auto it = std::ranges::begin(items);
  const auto end = std::ranges::end(items);
  std::size_t observed = 0;  // chunks that have taught the sizer
  while (it != end) {
    pace(sizer, chunks, observed, 4 * workers);
    chunks.push_back(send(it, end, sizer.next()));
  }
  return chunks;
}

/// The lazy range of results of `imap` (input order) and `imap_unordered` (completion order).
///
/// `Send(iterator&, sentinel, n)` reads at most `n` items of the input into one chunk and returns
/// its state; `Take(task_state&, std::vector<R>&)` appends a completed chunk's results or throws
/// its error. At most `window` chunks are in flight: the input is read only that far ahead.
template <class R, class View, class Send, class Take>
class lazy_results {
  struct state {
    View view;
    std::ranges::iterator_t<View> next;
    Send send;
    Take take;
    chunk_sizer sizer;
    std::size_t window;
    bool ordered;
    std::deque<std::shared_ptr<task_state>> in_flight;            // input order
    std::shared_ptr<completion_queue> completed;                  // unordered: chunk numbers
    std::map<std::size_t, std::shared_ptr<task_state>> numbered;  // unordered: in flight
    std::size_t sent = 0;                                         // chunks sent so far
    std::vector<R> current;  // the results of the chunk being read
    std::size_t at = 0;      // the result `current[at]` is the iterator's

    state(View v, Send s, Take t, std::size_t chunksize, std::size_t w, bool o)
        : view(std::move(v)),
          next(std::ranges::begin(view)),
          send(std::move(s)),
          take(std::move(t)),
          sizer(chunksize),
          window(std::max<std::size_t>(1, w)),
          ordered(o),
          completed(o ? nullptr : std::make_shared<completion_queue>()) {}

    ~state() {
      // Abandoned: what has not started never will; what runs finishes unobserved.
      for (auto& c : in_flight) c->cancel();
      for (auto& [number, c] : numbered) c->cancel();
    }

    std::size_t flying() const noexcept { return ordered ? in_flight.size() : numbered.size(); }

    void fill() {
      const auto end = std::ranges::end(view);
      while (flying() < window && next != end) {
        std::shared_ptr<task_state> chunk = send(next, end, sizer.next());
        if (ordered) {
          in_flight.push_back(std::move(chunk));
        } else {
          const std::size_t number = sent;
          chunk->on_done([q = completed, number] { q->push(number); });
          numbered.emplace(number, std::move(chunk));
        }
        ++sent;
      }
    }

    std::shared_ptr<task_state> pop() {
      if (ordered) {
        std::shared_ptr<task_state> c = std::move(in_flight.front());
        in_flight.pop_front();
        return c;
      }
      const auto it = numbered.find(completed->pop());
      std::shared_ptr<task_state> c = std::move(it->second);
      numbered.erase(it);
      return c;
    }

    // Moves to the next result; false at the end. A failed chunk throws here, once: the next
    // call goes on with the chunk after it.
    bool advance() {
      if (++at < current.size()) return true;
      current.clear();
      at = 0;
      for (;;) {
        fill();
        if (flying() == 0) return false;
        const std::shared_ptr<task_state> chunk = pop();
        chunk->wait();
        sizer.observe(*chunk);
        try {
          take(*chunk, current);
        } catch (...) {
          current.clear();  // a decode that failed part way left some results
          throw;
        }
        fill();  // the workers go on while the caller reads these results
        if (!current.empty()) return true;
      }
    }
  };

 public:
  /// An input iterator over the results; `operator++` waits for the next one.
  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    /// What dereferencing gives: `R&` (a bit's proxy for `bool`, as `std::vector<bool>` has).
    using reference = typename std::vector<R>::reference;

    /// Creates an iterator past the end.
    iterator() = default;
    /// Returns the current result.
    reference operator*() const { return s_->current[s_->at]; }
    /// Returns a pointer to the current result.
    R* operator->() const requires(!std::is_same_v<R, bool>) { return &s_->current[s_->at]; }
    /// Waits for the next result; rethrows the error of a failed item when it is reached.
    iterator& operator++() {
      if (!s_->advance()) s_ = nullptr;
      return *this;
    }
    /// Waits for the next result (postfix form; returns nothing useful).
    void operator++(int) { ++*this; }
    /// Returns whether the iterator has passed the last result.
    friend bool operator==(const iterator& i, std::default_sentinel_t) noexcept {
      return i.s_ == nullptr;
    }

   private:
    friend class lazy_results;
    explicit iterator(state* s) : s_(s) {
      s_->at = s_->current.size();  // so that the first advance fetches a chunk
      if (!s_->advance()) s_ = nullptr;
    }
    state* s_ = nullptr;
  };

  /// Starts the first `window` chunks at once.
  lazy_results(View view, Send send, Take take, std::size_t chunksize, std::size_t window,
               bool ordered)
      : s_(std::make_unique<state>(std::move(view), std::move(send), std::move(take), chunksize,
                                   window, ordered)) {
    s_->fill();
  }

  /// Waits for the first result (call once: the results are read as they are iterated).
  iterator begin() { return iterator(s_.get()); }
  /// Returns the end of the range.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::unique_ptr<state> s_;  // cancels what has not started when the range is dropped
};

}  // namespace mproc::detail
