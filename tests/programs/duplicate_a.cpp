// One of two files that each define a task called `work` with internal linkage.
#include <mproc/mproc.hpp>

namespace {
int work(int x) { return x + 1; }
}  // namespace

int submit_a(mproc::process_pool& pool) { return pool.submit<work>(1).get(); }
