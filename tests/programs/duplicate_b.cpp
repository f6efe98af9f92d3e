// The other of two files that each define a task called `work` with internal linkage.
#include <mproc/mproc.hpp>

namespace {
int work(int x) { return x + 2; }
}  // namespace

int submit_b(mproc::process_pool& pool) { return pool.submit<work>(1).get(); }
