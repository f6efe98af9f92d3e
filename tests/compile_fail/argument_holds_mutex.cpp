// A model object holding a std::mutex cannot be a task argument (Python: "can't pickle RLock").
// expect-error: argument_type_is_not_serializable<Model>
#include <mproc/mproc.hpp>

#include <mutex>

struct Model {
  std::mutex lock;
  int weights = 0;
};
int score(const Model& m) { return m.weights; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  Model model;
  return pool.submit<score>(model).get();
}
