#include <mproc/pool.hpp>

#include <charconv>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mproc {

pool_options parse_pool_options(int argc, const char* const* argv, pool_options base) {
  constexpr std::string_view method_flag = "--start-method=";
  constexpr std::string_view workers_flag = "--workers=";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.substr(0, method_flag.size()) == method_flag) {
      base.start = parse_start_method(arg.substr(method_flag.size()));
    } else if (arg.substr(0, workers_flag.size()) == workers_flag) {
      const std::string_view value = arg.substr(workers_flag.size());
      std::size_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
        throw std::invalid_argument("--workers: '" + std::string(value) +
                                    "' is not a number of workers (0 = one per core)");
      }
      if (n > max_workers) {
        throw std::invalid_argument("--workers: " + std::string(value) +
                                    " is more workers than a pool can have (at most " +
                                    std::to_string(max_workers) + ")");
      }
      base.workers = n;
    }
  }
  return base;
}

}  // namespace mproc
