// A process's arguments are checked as a task's are: a std::mutex cannot cross.
// expect-error: argument_type_is_not_serializable<std::mutex>
#include <mproc/mproc.hpp>

#include <mutex>

void use(const std::mutex& m) { (void)m; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  std::mutex m;
  return mproc::start_process<use>(m).join().exit_code.value_or(1);
}
