#include "platform/shared_memory.hpp"

#include "platform/process.hpp"

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace bip = boost::interprocess;

namespace mproc::platform {

struct shared_memory::impl {
  bip::mapped_region region;  // a named segment's mapping (Boost.Interprocess owns it)
  void* address = nullptr;    // the mapping, named or not
  std::size_t size = 0;
  int fd = -1;  // a segment without a name: its descriptor, until released

  explicit impl(bip::mapped_region r) noexcept
      : region(std::move(r)), address(region.get_address()), size(region.get_size()) {}
  impl(void* mapped, std::size_t bytes, int descriptor) noexcept
      : address(mapped), size(bytes), fd(descriptor) {}
  ~impl() {
    if (region.get_address() == nullptr && address != nullptr) ::munmap(address, size);
    if (fd >= 0) ::close(fd);
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
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
      return shared_memory(std::make_unique<impl>(bip::mapped_region(shm, bip::read_write)));
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
    return shared_memory(std::make_unique<impl>(bip::mapped_region(shm, bip::read_write)));
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

shared_memory shared_memory::create_anonymous(std::size_t bytes, std::error_code& ec) noexcept {
  ec.clear();
  const auto fail = [&](int fd, int error) {
    if (fd >= 0) ::close(fd);
    ec = {error, std::generic_category()};
    return shared_memory(nullptr);
  };
  // No name, so nothing to leak or sweep, and no quota of /dev/shm's: the memory goes with its
  // last descriptor and mapping. Sealed at its size, so that a peer holding the descriptor
  // cannot shrink it under this process's mapping (a SIGBUS here).
  const int fd = ::memfd_create("mproc-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    // A kernel before 3.17, or a sandbox that refuses the call: named memory will do.
    return fail(-1, errno == ENOSYS || errno == EPERM ? ENOSYS : errno);
  }
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) return fail(fd, errno);
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return fail(fd, errno);
  }
  // The first page (the control block, written at once) is allocated for real.
  if (const int rc = ::posix_fallocate(fd, 0, 4096); rc != 0) return fail(fd, rc);
  void* mapped = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) return fail(fd, errno);
  auto state = std::unique_ptr<impl>(new (std::nothrow) impl(mapped, bytes, fd));
  if (state == nullptr) {
    ::munmap(mapped, bytes);
    return fail(fd, ENOMEM);
  }
  return shared_memory(std::move(state));
}

shared_memory shared_memory::adopt(int fd, std::error_code& ec) noexcept {
  ec.clear();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ec = {errno, std::generic_category()};
    ::close(fd);
    return shared_memory(nullptr);
  }
  if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
    ec = std::make_error_code(std::errc::bad_message);
    ::close(fd);
    return shared_memory(nullptr);
  }
  const auto bytes = static_cast<std::size_t>(st.st_size);
  void* mapped = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) {
    ec = {errno, std::generic_category()};
    ::close(fd);
    return shared_memory(nullptr);
  }
  auto state = std::unique_ptr<impl>(new (std::nothrow) impl(mapped, bytes, fd));
  if (state == nullptr) {
    ::munmap(mapped, bytes);
    ::close(fd);
    ec = std::make_error_code(std::errc::not_enough_memory);
    return shared_memory(nullptr);
  }
  return shared_memory(std::move(state));
}

shared_memory shared_memory::open_peer(int pid, int fd, std::error_code& ec) noexcept {
  ec.clear();
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const int own = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (own < 0) {
    ec = {errno == ENOENT ? ESRCH : errno, std::generic_category()};
    return shared_memory(nullptr);
  }
  return adopt(own, ec);
}

shared_memory::shared_memory(std::unique_ptr<impl> state) noexcept : impl_(std::move(state)) {}
shared_memory::shared_memory() noexcept = default;
shared_memory::shared_memory(shared_memory&&) noexcept = default;
shared_memory& shared_memory::operator=(shared_memory&&) noexcept = default;
shared_memory::~shared_memory() = default;

void* shared_memory::address() const noexcept { return impl_->address; }
std::size_t shared_memory::size() const noexcept { return impl_->size; }
int shared_memory::descriptor() const noexcept { return impl_->fd; }

void shared_memory::release_descriptor() noexcept {
  if (impl_->fd >= 0) ::close(impl_->fd);
  impl_->fd = -1;
}

namespace {

// The start time of process `pid` (clock ticks after boot), or nothing if there is no such
// process in this pid namespace.
std::optional<unsigned long long> start_time_of(int pid) {
  const std::optional<process_record> r = look_up_process(pid);
  if (!r) return std::nullopt;
  return r->started;
}

// The pid namespace of this process (the inode of /proc/self/ns/pid), or 0 if unknown.
unsigned long long pid_namespace() noexcept {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<unsigned long long>(st.st_ino) : 0;
}

}  // namespace

bool shared_memory_room(std::uint64_t& total, std::uint64_t& free) noexcept {
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) != 0) return false;
  total = static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
  free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  return true;
}

std::string segment_prefix() {
  // Read each time, with no cache and no lock: a forked child has a pid and a start time of
  // its own, and a lock held by another thread at a fork would stay held in the child.
  const int pid = ::getpid();
  return "mproc-" + std::to_string(pid) + "-" + std::to_string(pid_namespace()) + "-" +
         std::to_string(start_time_of(pid).value_or(0)) + "-";
}

void remove_orphaned_segments() noexcept {
  try {
    // Without its own namespace and start time, nothing can be proved about anyone's.
    const unsigned long long ns = pid_namespace();
    if (ns == 0 || !start_time_of(::getpid())) return;
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/dev/shm", ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = it->path().filename().string();
      int pid = 0;
      unsigned long long name_ns = 0;
      unsigned long long start = 0;
      int used = 0;
      if (std::sscanf(name.c_str(), "mproc-%d-%llu-%llu-%n", &pid, &name_ns, &start, &used) != 3 ||
          used == 0 || pid <= 0 || name_ns != ns) {
        continue;  // not one of ours, or made in another pid namespace: its pid means nothing here
      }
      struct stat st {};
      if (::stat(it->path().c_str(), &st) != 0 || st.st_uid != ::geteuid()) continue;
      if (start_time_of(pid) == start) continue;  // its creator runs
      std::error_code ignored;
      std::filesystem::remove(it->path(), ignored);
    }
  } catch (...) {
    // Out of memory: the sweep is an optimisation, skipped.
  }
}

}  // namespace mproc::platform
