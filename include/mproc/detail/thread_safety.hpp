#pragma once
// Clang's thread-safety analysis (-Wthread-safety): which mutex guards what, checked at
// compile time. libstdc++'s std::mutex carries no such attributes, so mproc's own code locks a
// `detail::mutex` through `detail::lock_guard` or `detail::unique_lock`, thin wrappers of the
// std ones; for other compilers the attributes are empty.

#include <mutex>

#if defined(__clang__)
#define MPROC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MPROC_THREAD_ANNOTATION(x)
#endif

/// Marks a class as a lock ("mutex").
#define MPROC_CAPABILITY(x) MPROC_THREAD_ANNOTATION(capability(x))
/// Marks a class whose objects hold a lock for their lifetime.
#define MPROC_SCOPED_CAPABILITY MPROC_THREAD_ANNOTATION(scoped_lockable)
/// Says that a member is read and written only with `x` held.
#define MPROC_GUARDED_BY(x) MPROC_THREAD_ANNOTATION(guarded_by(x))
/// Says that a function must be called with the given locks held.
#define MPROC_REQUIRES(...) MPROC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
/// Says that a function takes the given locks (or, on a lock class, the object itself).
#define MPROC_ACQUIRE(...) MPROC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
/// Says that a function releases the given locks (or, on a lock class, the object itself).
#define MPROC_RELEASE(...) MPROC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
/// Says that a function must be called without the given locks held (it takes them).
#define MPROC_EXCLUDES(...) MPROC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

namespace mproc::detail {

/// A std::mutex that the thread-safety analysis knows as a lock.
class MPROC_CAPABILITY("mutex") mutex {
 public:
  /// Takes the lock.
  void lock() MPROC_ACQUIRE() { m_.lock(); }
  /// Releases the lock.
  void unlock() MPROC_RELEASE() { m_.unlock(); }
  /// Returns the std::mutex, for `unique_lock` only.
  std::mutex& native() noexcept { return m_; }

 private:
  std::mutex m_;
};

/// Holds a `mutex` for its scope.
class MPROC_SCOPED_CAPABILITY lock_guard {
 public:
  /// Takes `m`.
  explicit lock_guard(mutex& m) MPROC_ACQUIRE(m) : m_(m) { m_.lock(); }
  /// Releases it.
  ~lock_guard() MPROC_RELEASE() { m_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  mutex& m_;
};

/// Holds a `mutex` for its scope, may release and retake it, and lets a condition variable
/// wait with it (`native()`).
class MPROC_SCOPED_CAPABILITY unique_lock {
 public:
  /// Takes `m`.
  explicit unique_lock(mutex& m) MPROC_ACQUIRE(m) : lock_(m.native()) {}
  /// Releases it if held.
  ~unique_lock() MPROC_RELEASE() = default;
  unique_lock(const unique_lock&) = delete;
  unique_lock& operator=(const unique_lock&) = delete;

  /// Releases the mutex.
  void unlock() MPROC_RELEASE() { lock_.unlock(); }
  /// Takes it again.
  void lock() MPROC_ACQUIRE() { lock_.lock(); }
  /// Returns the std::unique_lock, for condition variables: they release and retake the
  /// mutex inside their wait, which the analysis takes as held throughout.
  std::unique_lock<std::mutex>& native() noexcept { return lock_; }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace mproc::detail
