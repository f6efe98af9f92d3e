// A result type without serialization is rejected too, and map checks like submit.
// expect-error: result_type_is_not_serializable<Model>
#include <mproc/mproc.hpp>

#include <mutex>
#include <vector>

struct Model {
  std::mutex lock;
  int weights = 0;
};
Model build(int) { return {}; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  pool.map<build>(std::vector<int>{1, 2});
}
