#include "support.hpp"

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace mproc_test {

namespace {

std::vector<std::pair<int, int>> all_processes() {
  std::vector<std::pair<int, int>> procs;  // (pid, ppid)
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
    procs.emplace_back(std::stoi(name), ppid);
  }
  return procs;
}

}  // namespace

std::vector<int> direct_children() {
  std::vector<int> out;
  for (const auto& [pid, ppid] : all_processes()) {
    if (ppid == ::getpid()) out.push_back(pid);
  }
  return out;
}

std::vector<int> child_pids() {
  // Every descendant: workers forked by a zygote are grandchildren.
  return descendants_of(static_cast<int>(::getpid()));
}

std::vector<int> descendants_of(int root) {
  const std::vector<std::pair<int, int>> procs = all_processes();
  std::vector<int> out;
  std::vector<int> parents{root};
  while (!parents.empty()) {
    const int parent = parents.back();
    parents.pop_back();
    for (const auto& [pid, ppid] : procs) {
      if (ppid != parent) continue;
      out.push_back(pid);
      parents.push_back(pid);
    }
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

std::vector<mproc::start_method> methods_under_test() {
  std::vector<mproc::start_method> out = mproc::available_start_methods();
  if (under_tsan) std::erase(out, mproc::start_method::fork);
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
