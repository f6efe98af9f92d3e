#include "platform/shared_memory.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/windows_shared_memory.hpp>

#include <system_error>

namespace bip = boost::interprocess;

namespace mproc::platform {

// windows_shared_memory, not the portable shared_memory_object: the portable one is emulated
// with files and depends on the BootId registry value; a native section vanishes with its last
// handle, so a crash cannot leak it. Each impl keeps its handle open for as long as it maps it.
struct shared_memory::impl {
  bip::windows_shared_memory shm;
  bip::mapped_region region;
};

namespace {

std::error_code error_of(const bip::interprocess_exception& e) {
  const int native = static_cast<int>(e.get_native_error());
  return {native != 0 ? native : 1117 /* ERROR_IO_DEVICE */, std::system_category()};
}

}  // namespace

shared_memory shared_memory::create(const std::string& name, std::size_t bytes,
                                    std::error_code& ec) noexcept {
  ec.clear();
  try {
    // The default security descriptor: the creating user (and the system) only.
    bip::windows_shared_memory shm(bip::create_only, name.c_str(), bip::read_write, bytes);
    bip::mapped_region region(shm, bip::read_write);
    return shared_memory(std::make_unique<impl>(impl{std::move(shm), std::move(region)}));
  } catch (const bip::interprocess_exception& e) {
    ec = error_of(e);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return shared_memory(nullptr);
}

shared_memory shared_memory::open(const std::string& name, std::error_code& ec) noexcept {
  ec.clear();
  try {
    bip::windows_shared_memory shm(bip::open_only, name.c_str(), bip::read_write);
    bip::mapped_region region(shm, bip::read_write);
    return shared_memory(std::make_unique<impl>(impl{std::move(shm), std::move(region)}));
  } catch (const bip::interprocess_exception& e) {
    ec = error_of(e);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return shared_memory(nullptr);
}

void shared_memory::remove(const std::string& /*name*/) noexcept {}

// A section has a name or is inherited by handle; workers here open theirs by name, and the
// section vanishes with its last handle anyway.
shared_memory shared_memory::create_anonymous(std::size_t /*bytes*/, std::error_code& ec) noexcept {
  ec = std::make_error_code(std::errc::function_not_supported);
  return shared_memory(nullptr);
}

shared_memory shared_memory::adopt(int /*fd*/, std::error_code& ec) noexcept {
  ec = std::make_error_code(std::errc::function_not_supported);
  return shared_memory(nullptr);
}

shared_memory shared_memory::open_peer(int /*pid*/, int /*fd*/, std::error_code& ec) noexcept {
  ec = std::make_error_code(std::errc::function_not_supported);
  return shared_memory(nullptr);
}

shared_memory::shared_memory(std::unique_ptr<impl> state) noexcept : impl_(std::move(state)) {}
shared_memory::shared_memory() noexcept = default;
shared_memory::shared_memory(shared_memory&&) noexcept = default;
shared_memory& shared_memory::operator=(shared_memory&&) noexcept = default;
shared_memory::~shared_memory() = default;

void* shared_memory::address() const noexcept { return impl_->region.get_address(); }
std::size_t shared_memory::size() const noexcept { return impl_->region.get_size(); }
int shared_memory::descriptor() const noexcept { return -1; }
void shared_memory::release_descriptor() noexcept {}

std::string segment_prefix() { return "mproc-" + std::to_string(::GetCurrentProcessId()) + "-0-"; }

void remove_orphaned_segments() noexcept {}

// Sections are backed by the paging file, not by a file system of their own.
bool shared_memory_room(std::uint64_t& /*total*/, std::uint64_t& /*free*/) noexcept {
  return false;
}

}  // namespace mproc::platform
