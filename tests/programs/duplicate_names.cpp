// Two different task functions with one name must fail loudly at start-up, naming the task.
#include <mproc/mproc.hpp>

#include <cstdio>
#include <string>

int submit_a(mproc::process_pool& pool);
int submit_b(mproc::process_pool& pool);

int main(int argc, char** argv) {
  try {
    mproc::init(argc, argv);
    std::puts("FAILED: init accepted two tasks with one name");
    return 1;
  } catch (const mproc::start_error& e) {
    std::printf("init: %s\n", e.what());
    if (std::string(e.what()).find("work") == std::string::npos) return 1;
  }
  try {
    mproc::process_pool pool;
    std::printf("FAILED: a pool started; results %d %d\n", submit_a(pool), submit_b(pool));
    return 1;
  } catch (const mproc::start_error& e) {
    std::printf("pool: %s\n", e.what());
  }
  return 0;
}
