#include "support.hpp"

#include <boost/test/unit_test.hpp>

namespace mproc_test {

std::vector<int> direct_children() {
  std::vector<int> out;
  for (const auto& [pid, ppid] : all_processes()) {
    if (ppid == current_pid()) out.push_back(pid);
  }
  return out;
}

std::vector<int> child_pids() {
  // Every descendant: workers forked by a zygote are grandchildren.
  return descendants_of(current_pid());
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

bool reports(const mproc::worker_crashed& e, const crash_report& r) {
  return e.signal() == r.signal && e.exit_code() == r.exit_code;
}

std::vector<std::string> leftover_segments() { return segments_of(current_pid()); }

void check_report(const mproc::worker_crashed& e, const crash_report& r) {
  BOOST_TEST((e.signal() == r.signal), "signal " << e.signal().value_or(0) << ": " << e.what());
  BOOST_TEST((e.exit_code() == r.exit_code),
             "exit code " << e.exit_code().value_or(0) << ": " << e.what());
  BOOST_TEST(std::string(e.what()).find(r.name) != std::string::npos,
             "'" << r.name << "' is not in: " << e.what());
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

mproc::process_options started_by(mproc::start_method method) {
  mproc::process_options o;
  o.start = method;
  return o;
}

namespace {

std::string listed(const std::vector<int>& pids) {
  std::string out;
  for (const int pid : pids) out += " " + std::to_string(pid);
  return out;
}

}  // namespace

clean_check::clean_check() {
  const std::vector<int> left = child_pids();
  BOOST_TEST_REQUIRE(left.empty(), "a previous test left a child process:" << listed(left));
}

clean_check::~clean_check() {
  const std::vector<int> left = child_pids();
  BOOST_TEST(left.empty(), "a child process is left after the test:" << listed(left));
  BOOST_TEST(leftover_segments().empty(), "a shared-memory segment is left after the test");
}

}  // namespace mproc_test
