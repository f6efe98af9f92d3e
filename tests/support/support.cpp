#include "support.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace mproc_test {

std::vector<int> child_pids() {
  std::vector<int> out;
  const int self = ::getpid();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Fields after the command (which may hold spaces) start after the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == self) out.push_back(std::stoi(name));
  }
  return out;
}

std::vector<std::string> leftover_segments() {
  std::vector<std::string> out;
  const std::string prefix = "mproc-" + std::to_string(::getpid()) + "-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  return out;
}

mproc::pool_options options(mproc::start_method method, std::size_t workers) {
  mproc::pool_options o;
  o.start = method;
  o.workers = workers;
  return o;
}

clean_check::clean_check() {
  BOOST_TEST_REQUIRE(child_pids().empty(), "a previous test left a child process");
}

clean_check::~clean_check() {
  BOOST_TEST(child_pids().empty(), "a child process is left after the test");
  BOOST_TEST(leftover_segments().empty(), "a shared-memory segment is left after the test");
}

}  // namespace mproc_test
