// A process function's result is its exit code: a string is not one.
// expect-error: a process function returns void or an integer
#include <mproc/mproc.hpp>

#include <string>

std::string greet() { return "hello"; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  return mproc::start_process<greet>().join().exit_code.value_or(1);
}
