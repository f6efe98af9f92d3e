// A raw pointer means nothing in another process.
// expect-error: argument_type_is_not_serializable<int ?\*>
#include <mproc/mproc.hpp>

int deref(int* p) { return *p; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  int x = 1;
  return pool.submit<deref>(&x).get();
}
