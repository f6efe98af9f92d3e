// Shows how to use an object that cannot cross a process boundary (it holds a mutex): pass its
// serializable configuration to a worker initializer, which builds the object once per worker.
#include <mproc/mproc.hpp>

#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

// What a worker needs to build the model: plain, serializable data.
struct Config {
  std::string name;
  double limit = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& name& limit;
  }
};

// The model holds a mutex (like a model object holding an RLock in Python): it cannot be copied
// to another process.
class Model {
 public:
  explicit Model(const Config& c) : limit_(c.limit) { ++built; }
  bool valid(const std::vector<double>& record) const {
    std::lock_guard lock(mutex_);
    double sum = 0;
    for (const double v : record) sum += v;
    return sum <= limit_;
  }
  static inline int built = 0;  // models built in this process

 private:
  mutable std::mutex mutex_;
  double limit_;
};

// The wrong way does not compile: the first error names
//   'mproc::detail::argument_type_is_not_serializable<Model>'
//   bool check_with(const Model& m, std::vector<double> r) { return m.valid(r); }
//   pool.submit<check_with>(model, record);

// The right way: an initializer builds the model once in each worker, from the config...
Model load_model(Config config) { return Model(config); }

// ...and tasks reach it as this worker's state.
std::pair<bool, int> check(std::vector<double> record) {
  const Model& model = mproc::worker_state<Model>();
  return {model.valid(record), Model::built};
}

int main(int argc, char** argv) try {
  mproc::init(argc, argv);
  const Config config{"sum-limit", 10.0};
  mproc::pool_options options = mproc::parse_pool_options(argc, argv);
  options.initializer = mproc::bind<load_model>(config);
  mproc::process_pool pool(options);

  std::vector<std::vector<double>> records;
  for (int i = 0; i < 200; ++i) records.push_back({i % 7 * 1.0, i % 5 * 1.5, i % 3 * 0.5});

  std::vector<mproc::future<std::pair<bool, int>>> verdicts;
  for (const auto& r : records) verdicts.push_back(pool.submit<check>(r));

  const Model local(config);  // the same check in this process, to compare against
  int valid = 0;
  bool agree = true;
  bool built_once = true;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto [ok, built] = verdicts[i].get();
    valid += ok ? 1 : 0;
    agree = agree && ok == local.valid(records[i]);
    built_once = built_once && built == 1;
  }
  std::printf("validator: %d of %zu records valid on %zu workers (%s)\n", valid, records.size(),
              pool.workers(), mproc::to_string(pool.start_method()).data());
  std::printf(
      "each worker built its model once, in its initializer: %s; results match a local "
      "run: %s\n",
      built_once ? "yes" : "NO", agree ? "yes" : "NO");
  return agree && built_once ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "validator: %s\n", e.what());
  return 2;
}
