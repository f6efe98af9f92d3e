// Shared memory for mproc::shared_array: one owner-only segment per array, named so that
// workers can map it, and removed when the creating process's last reference goes.

#include "channel/shared_block.hpp"

#include "platform/process.hpp"
#include "platform/refusal.hpp"
#include "platform/shared_memory.hpp"

#include <mproc/detail/thread_safety.hpp>
#include <mproc/errors.hpp>
#include <mproc/shared_array.hpp>

#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace mproc::detail {

namespace {

class mapped_block final : public shared_block {
 public:
  mapped_block(std::string name, platform::shared_memory memory, bool owner)
      : name_(std::move(name)), memory_(std::move(memory)), owner_(owner) {}
  ~mapped_block() override {
    // The creator's last reference removes the name; mappings elsewhere stay valid.
    if (owner_) platform::shared_memory::remove(name_);
  }
  const std::string& name() const noexcept override { return name_; }
  void* data() noexcept override { return memory_.address(); }

 private:
  std::string name_;
  platform::shared_memory memory_;
  bool owner_;
};

// In a worker, the arrays of recent tasks stay mapped until it is idle (see
// release_recent_views): mapping and unmapping for each task costs more than a round trip.
constexpr std::size_t recent_limit = 8;

// The arrays this process has mapped, so that tasks given the same array map it once.
struct view_table {
  mutex lock;
  std::map<std::string, std::weak_ptr<shared_block>> views MPROC_GUARDED_BY(lock);
  std::vector<std::shared_ptr<shared_block>> recent MPROC_GUARDED_BY(lock);
  bool keeping_recent MPROC_GUARDED_BY(lock) = false;
};

// Function-local: a shared_array at namespace scope may be created before this file's
// namespace-scope objects are, and is destroyed after the table it made.
view_table& table() {
  static view_table t;
  return t;
}

}  // namespace

std::shared_ptr<shared_block> shared_block::create(std::size_t bytes) {
  // The same prefix as the channel's segments: one killed while holding it is cleaned up too.
  std::string suffix;
  std::error_code ec = platform::random_hex(12, suffix);
  const std::string name = platform::segment_prefix() + "a" + suffix;
  std::optional<platform::shared_memory> created;
  if (!ec) created.emplace(platform::shared_memory::create(name, bytes == 0 ? 1 : bytes, ec));
  if (ec) {
    throw error("cannot create a shared_array of " + std::to_string(bytes) +
                " bytes: " + platform::explain_refusal(ec));
  }
  platform::shared_memory memory = std::move(*created);
  try {
    auto block = std::make_shared<mapped_block>(name, std::move(memory), true);
    view_table& t = table();
    const lock_guard lock(t.lock);
    std::erase_if(t.views, [](const auto& v) { return v.second.expired(); });
    t.views[name] = block;
    return block;
  } catch (...) {
    platform::shared_memory::remove(name);
    throw;
  }
}

std::shared_ptr<shared_block> shared_block::open(const std::string& name, std::size_t bytes) {
  view_table& t = table();
  const lock_guard lock(t.lock);
  if (const auto it = t.views.find(name); it != t.views.end()) {
    if (auto block = it->second.lock()) return block;
  }
  try {
    std::error_code ec;
    platform::shared_memory memory = platform::shared_memory::open(name, ec);
    if (ec) throw std::system_error(ec);
    if (memory.size() < bytes) {
      throw serialization_error("cannot map shared_array '" + name + "': it is smaller than " +
                                std::to_string(bytes) + " bytes");
    }
    auto block = std::make_shared<mapped_block>(name, std::move(memory), false);
    std::erase_if(t.views, [](const auto& v) { return v.second.expired(); });
    t.views[name] = block;
    if (t.keeping_recent) {
      if (t.recent.size() == recent_limit) t.recent.erase(t.recent.begin());
      t.recent.push_back(block);
    }
    return block;
  } catch (const serialization_error&) {
    throw;
  } catch (const std::exception& e) {
    throw serialization_error("cannot map shared_array '" + name +
                              "': it was released before this task used it (keep the array "
                              "alive until its tasks complete): " +
                              e.what());
  }
}

void keep_recent_views() noexcept {
  view_table& t = table();
  const lock_guard lock(t.lock);
  t.keeping_recent = true;
}

void release_recent_views() {
  std::vector<std::shared_ptr<shared_block>> released;
  view_table& t = table();
  const lock_guard lock(t.lock);
  released.swap(t.recent);
}  // the lock goes first, then `released`: unmapping happens outside it

}  // namespace mproc::detail
