#include "platform/refusal.hpp"

#include "platform/process.hpp"

namespace mproc::platform {

namespace {

// What a user can do about each refusal mproc meets.
const char* remedy(const std::error_code& ec) {
  if (ec == std::errc::resource_unavailable_try_again) {
    return "a limit on processes and threads is reached (RLIMIT_NPROC, see `ulimit -u`; "
           "kernel.threads-max; a container's pids limit). Lower pool_options::workers or "
           "raise the limit";
  }
  if (ec == std::errc::too_many_files_open) {
    return "this process has as many open descriptors as it may (RLIMIT_NOFILE, see "
           "`ulimit -n`). Close descriptors or raise the limit";
  }
  if (ec == std::errc::too_many_files_open_in_system) {
    return "the system's table of open files is full (fs.file-max)";
  }
  if (ec == std::errc::not_enough_memory) {
    return "memory is exhausted (the machine's, RLIMIT_AS, or a cgroup's limit)";
  }
  if (ec == std::errc::no_space_on_device) {
    return "the shared-memory file system (/dev/shm) is full. Free space there or enlarge it "
           "(docker run --shm-size=...)";
  }
  if (ec == std::errc::function_not_supported) {
    return "the system refuses the call (an old kernel, valgrind, or a seccomp filter)";
  }
  if (ec == std::errc::operation_not_permitted || ec == std::errc::permission_denied) {
    return "permission denied (a security policy such as seccomp, or file permissions)";
  }
  return nullptr;
}

}  // namespace

std::string explain_refusal(const std::error_code& ec) {
  std::string text = ec.message();
  if (const std::string name = platform::error_name(ec); !name.empty()) {
    text += " (" + name + ")";
  }
  if (const char* fix = remedy(ec)) text += std::string(": ") + fix;
  return text;
}

}  // namespace mproc::platform
