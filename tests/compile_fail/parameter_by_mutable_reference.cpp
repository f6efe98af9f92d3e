// A parameter taken by non-const reference would silently lose the worker's changes.
// expect-error: mproc: a task cannot take a parameter by non-const reference
#include <mproc/mproc.hpp>

void bump(int& x) { ++x; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  int x = 0;
  pool.submit<bump>(x).get();
}
