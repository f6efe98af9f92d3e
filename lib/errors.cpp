#include "platform/process.hpp"

#include <mproc/errors.hpp>

#include <sstream>
#include <utility>

namespace mproc {

namespace {

// "20", "0.25": a duration in milliseconds as a person writes it.
std::string milliseconds_text(std::chrono::nanoseconds d) {
  std::ostringstream os;
  os << std::chrono::duration<double, std::milli>(d).count();
  return os.str();
}

}  // namespace

remote_error::remote_error(std::string type, std::string message)
    : error(type + ": " + message), type_(std::move(type)), message_(std::move(message)) {}

worker_crashed::worker_crashed(int pid, std::optional<int> exit_code, std::optional<int> signal,
                               const std::string& task)
    : error("task '" + task + "' failed: its worker (pid " + std::to_string(pid) + ") " +
            platform::exit_status{exit_code, signal}.describe()),
      pid_(pid),
      exit_code_(exit_code),
      signal_(signal) {}

task_timeout::task_timeout(std::chrono::milliseconds limit, const std::string& task)
    : error("task '" + task + "' ran longer than its limit of " + std::to_string(limit.count()) +
            " ms; its worker was killed and replaced"),
      limit_(limit) {}

wait_timeout::wait_timeout(std::chrono::nanoseconds waited, const std::string& what)
    : error("the wait for " + what + " ran out after " + milliseconds_text(waited) +
            " ms; nothing was cancelled, and the wait can be repeated"),
      waited_(waited) {}

pool_closed::pool_closed() : error("cannot submit a task: the pool is shut down") {}

cancelled_error::cancelled_error() : error("the task was cancelled") {}

}  // namespace mproc
