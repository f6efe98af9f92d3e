#include "registry.hpp"

#include <mproc/errors.hpp>

#include <mutex>
#if !defined(_WIN32)
#include <pthread.h>
#endif
#include <unordered_map>
#include <vector>

namespace mproc::registry {

namespace {

struct table {
  table() {
#if !defined(_WIN32)
    // A pool's driver looks names up here while the application may fork a zygote, whose
    // workers look tasks up: the child's copy of the lock must not be left locked.
    ::pthread_atfork([] { the_table().mutex.lock(); }, [] { the_table().mutex.unlock(); },
                     [] { the_table().mutex.unlock(); });
#endif
  }
  std::mutex mutex;
  std::unordered_map<std::uint64_t, entry> entries;  // guarded by mutex
  std::vector<std::string> duplicates;               // guarded by mutex

  static table& the_table();
};

// A function-local static: registrations run during static initialisation, in no set order.
table& table::the_table() {
  static table t;
  return t;
}

table& the_table() { return table::the_table(); }

}  // namespace

const entry* find(std::uint64_t key) noexcept {
  table& t = the_table();
  std::lock_guard lock(t.mutex);
  const auto it = t.entries.find(key);
  return it == t.entries.end() ? nullptr : &it->second;
}

std::string name_of(std::uint64_t key) {
  const entry* e = find(key);
  return e != nullptr ? std::string(e->name) : std::string("unknown task");
}

std::size_t count() noexcept {
  table& t = the_table();
  std::lock_guard lock(t.mutex);
  return t.entries.size();
}

std::uint64_t digest() noexcept {
  table& t = the_table();
  std::lock_guard lock(t.mutex);
  std::uint64_t d = t.entries.size();
  for (const auto& [key, e] : t.entries) d ^= key * 0x9e3779b97f4a7c15ULL;
  return d;
}

void check() {
  table& t = the_table();
  std::lock_guard lock(t.mutex);
  if (t.duplicates.empty()) return;
  std::string names;
  for (const std::string& n : t.duplicates) names += (names.empty() ? "'" : ", '") + n + "'";
  throw start_error("cannot use mproc: two different task functions share the name " + names +
                    ", so a worker could not tell them apart. Give one of them another name "
                    "(functions with internal linkage in different files collide).");
}

}  // namespace mproc::registry

namespace mproc::detail {

std::uint64_t register_task(std::string_view name, invoker run, std::uint64_t salt) noexcept {
  const std::uint64_t key = digest(name) ^ salt;
  try {
    registry::table& t = registry::the_table();
    std::lock_guard lock(t.mutex);
    const auto [it, inserted] = t.entries.emplace(key, registry::entry{name, run});
    if (!inserted && it->second.run != run) t.duplicates.emplace_back(name);
  } catch (...) {
    // Out of memory during static initialisation: nothing sensible is left to do.
    std::terminate();
  }
  return key;
}

}  // namespace mproc::detail
