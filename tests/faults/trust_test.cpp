// A worker that scribbles over its own channel segment (a task writing through a stray
// pointer, or a hostile one) fails only its own task: the application keeps the sizes and
// positions it relies on in its own memory and checks what the worker publishes.

#include "channel/channel.hpp"
#include "platform/wake.hpp"
#include "support/support.hpp"

#include <mproc/mproc.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include <unistd.h>

namespace bdata = boost::unit_test::data;

namespace trust {

// The control block of the segment this worker serves: its one mapping of a channel's memory
// (a memfd, or a file in /dev/shm) of a channel's size (a 4 KiB control page and two rings of
// 1 MiB).
mproc::channel::segment_header* own_segment() {
  constexpr std::uint64_t channel_bytes = 4096 + 2 * (std::uint64_t{1} << 20);
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find("/memfd:mproc-channel") == std::string::npos &&
        line.find("/dev/shm/mproc-") == std::string::npos) {
      continue;
    }
    const std::size_t dash = line.find('-');
    const std::uint64_t start = std::stoull(line.substr(0, dash), nullptr, 16);
    const std::uint64_t end = std::stoull(line.substr(dash + 1), nullptr, 16);
    if (end - start == channel_bytes) {
      return reinterpret_cast<mproc::channel::segment_header*>(start);
    }
  }
  return nullptr;
}

// Overwrites the ring capacity in the segment, then answers 7.
int overwrite_capacity(std::uint64_t value) {
  mproc::channel::segment_header* h = own_segment();
  if (h == nullptr) return -1;
  h->capacity = value;
  return 7;
}

// Publishes a position 2^40 bytes ahead of what it wrote, wakes the application to read it,
// and waits to be killed.
int publish_a_false_position(int /*unused*/) {
  mproc::channel::segment_header* h = own_segment();
  if (h == nullptr) return -1;
  h->to_parent.write_pos.fetch_add(std::uint64_t{1} << 40);
  h->to_parent.data_signal.fetch_add(1);
  mproc::platform::wake_word(h->to_parent.data_signal, -1);
  for (;;) ::pause();
}

int square(int x) { return x * x; }

}  // namespace trust

BOOST_AUTO_TEST_SUITE(trust)

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check, a_worker_overwriting_its_ring_capacity_harms_nobody,
                       bdata::make(mproc_test::methods_under_test()) *
                           bdata::make({std::uint64_t{0}, std::uint64_t{1} << 40}),
                       method, value) {
  mproc::process_pool pool(mproc_test::options(method, 1));
  // The application used to read the capacity back for every message: 0 was SIGFPE in it,
  // 2^40 SIGSEGV.
  BOOST_TEST(pool.submit<trust::overwrite_capacity>(value).get() == 7);
  BOOST_TEST(pool.submit<trust::square>(3).get() == 9);
  BOOST_TEST(pool.submit<trust::square>(4).get() == 16);
}

BOOST_DATA_TEST_CASE_F(mproc_test::clean_check,
                       a_worker_publishing_a_false_position_fails_only_its_task,
                       bdata::make(mproc_test::methods_under_test()), method) {
  mproc::process_pool pool(mproc_test::options(method, 1));
  try {
    pool.submit<trust::publish_a_false_position>(0).get();
    BOOST_FAIL("the task completed");
  } catch (const mproc::serialization_error& e) {
    BOOST_TEST(std::string(e.what()).find("overwrote the positions") != std::string::npos,
               e.what());
  }
  BOOST_TEST(pool.submit<trust::square>(5).get() == 25);
}

BOOST_AUTO_TEST_SUITE_END()
