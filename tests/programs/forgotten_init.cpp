// A program whose main calls mproc::init only when asked to, to show what a forgotten init
// does under spawn: a clear start_error, no re-run of the program's work, no spawn storm.
#include <mproc/mproc.hpp>

#include <cstdio>
#include <cstring>

int square(int x) { return x * x; }

int main(int argc, char** argv) {
  // With --call-init the parent calls init, but its spawned workers (whose only argument is
  // the worker token) do not: they reach the pool below as a forgetful program would.
  if (argc > 1 && std::strcmp(argv[1], "--call-init") == 0) mproc::init(argc, argv);
  try {
    mproc::pool_options options;
    options.start = mproc::start_method::spawn;
    options.workers = 2;
    mproc::process_pool pool(options);
    std::printf("UNEXPECTED: the pool works: %d\n", pool.submit<square>(3).get());
  } catch (const mproc::start_error& e) {
    std::printf("start_error: %s\n", e.what());
  }
  return 0;
}
