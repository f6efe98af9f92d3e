#include "platform/shared_memory.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/statvfs.h>

namespace bip = boost::interprocess;

namespace mproc::platform {

struct shared_memory::impl {
  bip::mapped_region region;
};

namespace {

std::system_error system_error_of(const bip::interprocess_exception& e) {
  const int native = e.get_native_error();
  return {native != 0 ? native : EIO, std::generic_category(), e.what()};
}

}  // namespace

shared_memory shared_memory::create(const std::string& name, std::size_t bytes) {
  // tmpfs reserves nothing when a file grows: a full /dev/shm would show only as SIGBUS at the
  // first write to a page. Too little room is refused here instead, and the first page (the
  // control block, written at once) is allocated for real.
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) == 0 && fs.f_bavail * fs.f_frsize < bytes) {
    throw std::system_error(ENOSPC, std::generic_category(), "/dev/shm");
  }
  try {
    bip::permissions owner_only(0600);
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, owner_only);
    try {
      shm.truncate(static_cast<bip::offset_t>(bytes));
      if (const int rc = ::posix_fallocate(shm.get_mapping_handle().handle, 0, 4096); rc != 0) {
        throw std::system_error(rc, std::generic_category(), "/dev/shm");
      }
      return shared_memory(std::make_unique<impl>(impl{bip::mapped_region(shm, bip::read_write)}));
    } catch (...) {
      bip::shared_memory_object::remove(name.c_str());
      throw;
    }
  } catch (const bip::interprocess_exception& e) {
    throw system_error_of(e);
  }
}

shared_memory shared_memory::open(const std::string& name) {
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    return shared_memory(std::make_unique<impl>(impl{bip::mapped_region(shm, bip::read_write)}));
  } catch (const bip::interprocess_exception& e) {
    throw system_error_of(e);
  }
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

void remove_orphaned_segments(const std::string& prefix) noexcept {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/dev/shm", ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const int pid = std::atoi(name.c_str() + prefix.size());
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) {
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
    }
  }
}

}  // namespace mproc::platform
