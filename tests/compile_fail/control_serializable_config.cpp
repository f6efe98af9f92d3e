// Control: the same shape with a serializable type compiles.
// expect: compiles
#include <mproc/mproc.hpp>

#include <string>
#include <vector>

struct Config {
  std::string name;
  int weights = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& name& weights;
  }
};
int score(const Config& c) { return c.weights; }
Config build(int w) { return {"built", w}; }

int main(int argc, char** argv) {
  mproc::init(argc, argv);
  mproc::process_pool pool;
  const int s = pool.submit<score>(Config{"m", 3}).get();
  const std::vector<Config> built = pool.map<build>(std::vector<int>{1, 2});
  return s + static_cast<int>(built.size());
}
