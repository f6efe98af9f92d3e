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

std::error_code error_of(const bip::interprocess_exception& e) {
  const int native = e.get_native_error();
  return {native != 0 ? native : EIO, std::generic_category()};
}

}  // namespace

shared_memory shared_memory::create(const std::string& name, std::size_t bytes,
                                    std::error_code& ec) noexcept {
  ec.clear();
  // tmpfs reserves nothing when a file grows: a full /dev/shm would show only as SIGBUS at the
  // first write to a page. Too little room is refused here instead, and the first page (the
  // control block, written at once) is allocated for real.
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) == 0 && fs.f_bavail * fs.f_frsize < bytes) {
    ec = {ENOSPC, std::generic_category()};
    return shared_memory(nullptr);
  }
  bool created = false;
  try {
    bip::permissions owner_only(0600);
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, owner_only);
    created = true;
    shm.truncate(static_cast<bip::offset_t>(bytes));
    if (const int rc = ::posix_fallocate(shm.get_mapping_handle().handle, 0, 4096); rc != 0) {
      ec = {rc, std::generic_category()};
    } else {
      return shared_memory(std::make_unique<impl>(impl{bip::mapped_region(shm, bip::read_write)}));
    }
  } catch (const bip::interprocess_exception& e) {
    ec = error_of(e);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  if (created) bip::shared_memory_object::remove(name.c_str());
  return shared_memory(nullptr);
}

shared_memory shared_memory::open(const std::string& name, std::error_code& ec) noexcept {
  ec.clear();
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_write);
    return shared_memory(std::make_unique<impl>(impl{bip::mapped_region(shm, bip::read_write)}));
  } catch (const bip::interprocess_exception& e) {
    ec = error_of(e);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return shared_memory(nullptr);
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
