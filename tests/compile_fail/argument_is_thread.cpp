// A std::thread cannot cross a process boundary.
// expect-error: argument_type_is_not_serializable<std::thread>
#include <mproc/mproc.hpp>

#include <thread>

int joinable(const std::thread& t) { return t.joinable() ? 1 : 0; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  std::thread t;
  return pool.submit<joinable>(t).get();
}
