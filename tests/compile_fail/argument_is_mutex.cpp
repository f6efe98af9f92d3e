// A std::mutex itself cannot cross a process boundary.
// expect-error: argument_type_is_not_serializable<std::mutex>
#include <mproc/mproc.hpp>

#include <mutex>

int use(const std::mutex& m) { return &m != nullptr; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  std::mutex m;
  return pool.submit<use>(m).get();
}
