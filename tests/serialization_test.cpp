// The serializable concept, and values of every supported kind crossing a process boundary.

#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

namespace bdata = boost::unit_test::data;

namespace shapes {

// A member serialize.
struct point {
  int x = 0;
  int y = 0;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& x& y;
  }
  bool operator==(const point&) const = default;
};

// A free serialize, found by argument-dependent lookup.
struct label {
  std::string text;
  std::vector<point> anchors;
  bool operator==(const label&) const = default;
};
template <class Archive>
void serialize(Archive& ar, label& l, const unsigned int /*version*/) {
  ar& l.text& l.anchors;
}

// A private serialize, reachable through the friend declarations.
class secret {
 public:
  secret() = default;
  explicit secret(int v) : value_(v) {}
  int value() const { return value_; }

 private:
  friend class boost::serialization::access;
  friend struct mproc::access;
  template <class Archive>
  void serialize(Archive& ar, const unsigned int /*version*/) {
    ar& value_;
  }
  int value_ = 0;
};

// Split member save/load.
struct split {
  int stored = 0;
  template <class Archive>
  void save(Archive& ar, const unsigned int /*version*/) const {
    const int doubled = stored * 2;
    ar << doubled;
  }
  template <class Archive>
  void load(Archive& ar, const unsigned int /*version*/) {
    int doubled = 0;
    ar >> doubled;
    stored = doubled / 2;
  }
  BOOST_SERIALIZATION_SPLIT_MEMBER()
};

enum class colour { red, green };

// Not serializable: no serialization function, or state that cannot cross a process boundary.
struct plain {
  int x = 0;
};
struct model {
  std::mutex lock;
  int weights = 0;
};

}  // namespace shapes

// A non-intrusive serialize in Boost's own namespace, the style Boost's documentation shows.
struct outsider {
  double value = 0;
};
namespace boost::serialization {
template <class Archive>
void serialize(Archive& ar, outsider& o, const unsigned int /*version*/) {
  ar& o.value;
}
}  // namespace boost::serialization

static_assert(mproc::serializable<int>);
static_assert(mproc::serializable<double>);
static_assert(mproc::serializable<shapes::colour>);
static_assert(mproc::serializable<std::string>);
static_assert(mproc::serializable<std::vector<std::string>>);
static_assert(mproc::serializable<std::map<std::string, std::vector<int>>>);
static_assert(mproc::serializable<std::unordered_map<int, std::set<std::string>>>);
static_assert(mproc::serializable<std::optional<shapes::point>>);
static_assert(mproc::serializable<std::variant<std::monostate, int, std::string>>);
static_assert(mproc::serializable<std::tuple<int, std::string, shapes::label>>);
static_assert(mproc::serializable<std::pair<int, shapes::point>>);
static_assert(mproc::serializable<std::array<shapes::point, 3>>);
static_assert(mproc::serializable<shapes::point>);
static_assert(mproc::serializable<shapes::label>);
static_assert(mproc::serializable<shapes::secret>);
static_assert(mproc::serializable<shapes::split>);
static_assert(mproc::serializable<outsider>);
static_assert(mproc::serializable<const shapes::point&>);

static_assert(!mproc::serializable<int*>);
static_assert(!mproc::serializable<const char*>);
static_assert(!mproc::serializable<std::mutex>);
static_assert(!mproc::serializable<std::thread>);
static_assert(!mproc::serializable<shapes::plain>);
static_assert(!mproc::serializable<shapes::model>);
static_assert(!mproc::serializable<std::vector<std::mutex*>>);
static_assert(!mproc::serializable<std::vector<shapes::plain>>);
static_assert(!mproc::serializable<std::map<int, shapes::plain>>);
static_assert(!mproc::serializable<std::optional<shapes::model*>>);
static_assert(!mproc::serializable<std::variant<int, shapes::plain>>);
static_assert(!mproc::serializable<std::tuple<int, std::thread>>);

namespace tasks {

shapes::label relabel(shapes::label l, shapes::point shift) {
  l.text += "!";
  for (shapes::point& p : l.anchors) {
    p.x += shift.x;
    p.y += shift.y;
  }
  return l;
}
shapes::secret reveal(shapes::secret s) { return shapes::secret(s.value() + 1); }
shapes::split halve(shapes::split s) { return s; }
outsider negate(outsider o) { return outsider{-o.value}; }
std::map<std::string, int> count_words(std::vector<std::string> words) {
  std::map<std::string, int> counts;
  for (const std::string& w : words) ++counts[w];
  return counts;
}
std::optional<int> find_first_even(std::vector<int> xs) {
  for (const int x : xs) {
    if (x % 2 == 0) return x;
  }
  return std::nullopt;
}
std::variant<int, std::string> describe(int x) {
  if (x < 0) return std::string("negative");
  return x * 2;
}
std::tuple<int, std::string, shapes::colour> unpack(
    std::tuple<int, std::string, shapes::colour> t) {
  std::get<0>(t) += 1;
  std::get<1>(t) += "?";
  std::get<2>(t) = shapes::colour::green;
  return t;
}

// Only raw-coded types (numbers, enums, strings, vectors of numbers) and one that is not.
std::string describe_raw(double d, shapes::colour c, std::string s, std::vector<std::int16_t> v,
                         std::vector<bool> flags) {
  return std::to_string(static_cast<int>(d * 2)) + "/" + std::to_string(static_cast<int>(c)) + "/" +
         s + "/" + std::to_string(v.size() > 0 ? v.back() : -1) + "/" +
         std::to_string(flags.size());
}
std::vector<double> scale(std::vector<double> v) {
  for (double& x : v) x *= 2;
  return v;
}
std::string shout(std::string s) { return s + "!"; }

}  // namespace tasks

BOOST_AUTO_TEST_SUITE(serialization)

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, user_and_standard_types_cross_intact,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::process_pool pool(mproc_test::options(method));

  const shapes::label in{"tag", {{1, 2}, {3, 4}}};
  const shapes::label out = pool.submit<tasks::relabel>(in, shapes::point{10, 20}).get();
  BOOST_TEST(out.text == "tag!");
  BOOST_TEST((out.anchors == std::vector<shapes::point>{{11, 22}, {13, 24}}));

  BOOST_TEST(pool.submit<tasks::reveal>(shapes::secret(41)).get().value() == 42);
  BOOST_TEST(pool.submit<tasks::halve>(shapes::split{21}).get().stored == 21);
  BOOST_TEST(pool.submit<tasks::negate>(outsider{2.5}).get().value == -2.5);

  const auto counts =
      pool.submit<tasks::count_words>(std::vector<std::string>{"a", "b", "a", ""}).get();
  BOOST_TEST((counts == std::map<std::string, int>{{"", 1}, {"a", 2}, {"b", 1}}));

  BOOST_TEST((pool.submit<tasks::find_first_even>(std::vector<int>{1, 3, 8, 10}).get() == 8));
  BOOST_TEST(!pool.submit<tasks::find_first_even>(std::vector<int>{1, 3}).get().has_value());

  BOOST_TEST(std::get<int>(pool.submit<tasks::describe>(21).get()) == 42);
  BOOST_TEST(std::get<std::string>(pool.submit<tasks::describe>(-1).get()) == "negative");

  const auto t =
      pool.submit<tasks::unpack>(std::make_tuple(1, std::string("why"), shapes::colour::red)).get();
  BOOST_TEST(std::get<0>(t) == 2);
  BOOST_TEST(std::get<1>(t) == "why?");
  BOOST_TEST((std::get<2>(t) == shapes::colour::green));
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, raw_coded_types_cross_intact,
                       bdata::make(mproc_test::methods_under_test()), method) {
  static_assert(mproc::detail::raw_codec<std::string> && mproc::detail::raw_codec<double> &&
                mproc::detail::raw_codec<std::vector<std::int16_t>>);
  static_assert(!mproc::detail::raw_codec<std::vector<bool>> &&
                !mproc::detail::raw_codec<std::vector<std::string>>);
  mproc::process_pool pool(mproc_test::options(method));
  BOOST_TEST(
      pool.submit<tasks::describe_raw>(1.5, shapes::colour::green, "", std::vector<std::int16_t>{},
                                       std::vector<bool>{true, false})
          .get() == "3/" + std::to_string(static_cast<int>(shapes::colour::green)) + "//-1/2");
  BOOST_TEST(pool.submit<tasks::describe_raw>(0.0, shapes::colour::red, std::string(3000, 'x'),
                                              std::vector<std::int16_t>{1, -7}, std::vector<bool>{})
                 .get()
                 .size() == std::string("0/0//-7/0").size() + 3000);
  std::vector<double> big(300000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<double>(i) / 3;
  const std::vector<double> twice = pool.submit<tasks::scale>(big).get();
  BOOST_TEST_REQUIRE(twice.size() == big.size());
  for (std::size_t i = 0; i < big.size(); i += 997) BOOST_TEST(twice[i] == 2 * big[i]);
  const std::vector<std::string> words{"a", "", "longer word", std::string(1000, 'z')};
  const std::vector<std::string> loud = pool.map<tasks::shout>(words, 3);
  BOOST_TEST_REQUIRE(loud.size() == words.size());
  for (std::size_t i = 0; i < words.size(); ++i) BOOST_TEST(loud[i] == words[i] + "!");
}

// For BOOST_CHECK_EXCEPTION: whether the error's message contains `part`.
auto mentions(std::string part) {
  return [part = std::move(part)](const std::exception& e) {
    return std::string(e.what()).find(part) != std::string::npos;
  };
}

static_assert(mproc::detail::raw_codec<mproc::shared_array<double>>,
              "a shared_array is a handle: it travels as raw bytes");

BOOST_AUTO_TEST_CASE(a_shared_array_handle_crosses_as_raw_bytes_and_rejects_a_bad_count) {
  namespace d = mproc::detail;
  mproc::shared_array<double> a(16);
  a[15] = 2.5;
  std::vector<char> bytes;
  d::raw_writer(bytes).put(a);
  std::vector<mproc::shared_array<double>> back;
  d::decode_values(bytes, 1, back);
  BOOST_TEST_REQUIRE(back.size() == 1U);
  BOOST_TEST(back[0].size() == 16U);
  BOOST_TEST(back[0][15] == 2.5);
  back[0][0] = 1.5;  // the same memory, not a copy
  BOOST_TEST(a[0] == 1.5);
  // A count whose byte size overflows is refused before anything is mapped.
  std::vector<char> lie;
  d::raw_writer w(lie);
  w.put(std::string("mproc-0-anything"));
  w.put(std::uint64_t{1} << 62);
  std::vector<mproc::shared_array<double>> none;
  BOOST_CHECK_EXCEPTION(d::decode_values(lie, 1, none), mproc::serialization_error,
                        mentions("more elements than memory"));
}

BOOST_AUTO_TEST_CASE(malformed_raw_bytes_are_a_serialization_error) {
  namespace d = mproc::detail;
  std::vector<char> bytes;
  d::raw_writer w(bytes);
  w.put(std::string("hello"));
  w.put(42);
  // Cut short, inside the string and inside the int.
  for (const std::size_t keep : {std::size_t{3}, std::size_t{10}, bytes.size() - 1}) {
    std::vector<std::string> out;
    BOOST_CHECK_THROW(
        d::decode_values(
            std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)), 2,
            out),
        mproc::serialization_error);
  }
  // A block that announces far more than the message holds fails before allocating it.
  std::vector<char> lie;
  d::raw_writer(lie).put(std::uint64_t{1} << 60);
  std::vector<std::vector<double>> values;
  BOOST_CHECK_EXCEPTION(d::decode_values(lie, 1, values), mproc::serialization_error,
                        mentions("announces more"));
  // Intact bytes decode.
  std::vector<int> ints;
  std::vector<char> good;
  d::raw_writer(good).put(7);
  d::decode_values(good, 1, ints);
  BOOST_TEST((ints == std::vector<int>{7}));
}

BOOST_AUTO_TEST_SUITE_END()
