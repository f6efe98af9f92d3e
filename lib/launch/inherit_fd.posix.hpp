#pragma once
// Hands a descriptor to a child started by Boost.Process v2 under a chosen number.
// (Boost.Process 1.81's own bind_fd returns no value from on_setup.)

#include "launch/boost_process.posix.hpp"

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

namespace mproc::launch {

/// Makes `fd` of this process appear as `target` in the child. `fd` must not be below every
/// target of the same launch (see `raise_fd`), or an earlier dup2 could overwrite it.
struct inherit_fd {
  int target;
  int fd;
  boost::process::v2::error_code on_setup(boost::process::v2::posix::default_launcher& launcher,
                                          const boost::process::v2::filesystem::path&,
                                          const char* const*) const {
    launcher.fd_whitelist.push_back(target);
    return {};
  }
  boost::process::v2::error_code on_exec_setup(boost::process::v2::posix::default_launcher&,
                                               const boost::process::v2::filesystem::path&,
                                               const char* const*) const {
    // dup2 onto itself would keep close-on-exec set: clear it explicitly then.
    const int r = fd == target ? ::fcntl(fd, F_SETFD, 0) : ::dup2(fd, target);
    if (r == -1) {
      return boost::process::v2::error_code(errno, boost::process::v2::system_category());
    }
    return {};
  }
};

/// Returns a close-on-exec duplicate of `fd` numbered 10 or more (above every target we use).
inline int raise_fd(int fd) { return ::fcntl(fd, F_DUPFD_CLOEXEC, 10); }

}  // namespace mproc::launch
