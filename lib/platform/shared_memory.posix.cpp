#include "platform/shared_memory.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

namespace bip = boost::interprocess;

namespace mproc::platform {

struct shared_memory::impl {
  bip::mapped_region region;
};

shared_memory shared_memory::create(const std::string& name, std::size_t bytes) {
  bip::permissions owner_only(0600);
  bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, owner_only);
  try {
    shm.truncate(static_cast<bip::offset_t>(bytes));
    return shared_memory(std::make_unique<impl>(impl{bip::mapped_region(shm, bip::read_write)}));
  } catch (...) {
    bip::shared_memory_object::remove(name.c_str());
    throw;
  }
}

shared_memory shared_memory::open(const std::string& name) {
  bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
  return shared_memory(std::make_unique<impl>(impl{bip::mapped_region(shm, bip::read_write)}));
}

void shared_memory::remove(const std::string& name) noexcept {
  bip::shared_memory_object::remove(name.c_str());
}

shared_memory::shared_memory(std::unique_ptr<impl> state) noexcept : impl_(std::move(state)) {}
shared_memory::shared_memory(shared_memory&&) noexcept = default;
shared_memory& shared_memory::operator=(shared_memory&&) noexcept = default;
shared_memory::~shared_memory() = default;

void* shared_memory::address() const noexcept { return impl_->region.get_address(); }
std::size_t shared_memory::size() const noexcept { return impl_->region.get_size(); }

}  // namespace mproc::platform
