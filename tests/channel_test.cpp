// The shared-memory transport on its own: segment permissions and names, messages larger than
// a ring, deadlines, and a dead peer waking whoever waits on it; and the memory that messages
// and task states live in.

#include "channel/channel.hpp"
#include "buffers.hpp"
#include "platform/shared_memory.hpp"
#include "support/support.hpp"
#include "task_memory.hpp"

#include <mproc/detail/codec.hpp>
#include <mproc/errors.hpp>

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <malloc.h>
#endif

namespace ch = mproc::channel;
namespace bdata = boost::unit_test::data;

namespace {

// A new segment whose rings hold `capacity` bytes each; fails the test if there is none.
std::shared_ptr<ch::segment> new_segment(std::size_t capacity,
                                         ch::segment::reach how = ch::segment::reach::any) {
  std::error_code ec;
  auto seg = ch::segment::create(capacity, ec, how);
  BOOST_TEST_REQUIRE(!ec, "segment::create: " << ec.message());
  return seg;
}

std::vector<char> pattern(std::size_t n) {
  std::vector<char> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<char>(i * 7 + (i >> 11));
  return v;
}

ch::message_header header_for(std::size_t size) {
  ch::message_header h;
  h.kind = ch::message_kind::task;
  h.id = 42;
  h.key = 7;
  h.count = 1;
  h.size = size;
  return h;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(channel)

BOOST_AUTO_TEST_CASE(named_segments_have_unpredictable_names_and_vanish_with_their_owner) {
  auto a = new_segment(4096, ch::segment::reach::named);
  auto b = new_segment(4096, ch::segment::reach::named);
  BOOST_TEST(a->name() != b->name());
  const std::string prefix = mproc::platform::segment_prefix();
  BOOST_TEST(prefix.rfind("mproc-" + std::to_string(mproc_test::current_pid()) + "-", 0) == 0U);
  BOOST_TEST(a->name().rfind(prefix, 0) == 0U);
  BOOST_TEST(a->name().size() == prefix.size() + 24);  // 96 random bits
  BOOST_TEST(mproc_test::leftover_segments().size() >= 2U);
  a.reset();
  b.reset();
  BOOST_TEST(mproc_test::leftover_segments().empty());
}

BOOST_AUTO_TEST_CASE(named_segments_are_owner_only_and_their_names_can_be_removed_early,
                     *boost::unit_test::precondition(mproc_test::posix_only{
                         "file modes and early unlinking; a Windows section has the creator's "
                         "default security and no name apart from its handles"})) {
#if !defined(_WIN32)
  auto a = new_segment(4096, ch::segment::reach::named);
  auto b = new_segment(4096, ch::segment::reach::named);
  struct stat st {};
  BOOST_TEST_REQUIRE(::stat(("/dev/shm/" + a->name()).c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600U);
  a->unlink();
  BOOST_TEST(::stat(("/dev/shm/" + a->name()).c_str(), &st) != 0);
  const std::string b_name = b->name();
  b.reset();  // destruction removes a name that is still there
  BOOST_TEST(::stat(("/dev/shm/" + b_name).c_str(), &st) != 0);
#endif
}

BOOST_AUTO_TEST_CASE(segments_without_a_name_are_passed_by_descriptor_and_sealed_at_their_size,
                     *boost::unit_test::precondition(mproc_test::posix_only{
                         "memfd_create is Linux's; Windows sections are named"})) {
#if !defined(_WIN32)
  const std::size_t before = mproc_test::leftover_segments().size();
  auto seg = new_segment(4096);
  BOOST_TEST_REQUIRE(ch::segment::anonymous());
  BOOST_TEST(seg->name().empty());
  BOOST_TEST_REQUIRE(seg->descriptor() >= 0);
  BOOST_TEST(mproc_test::leftover_segments().size() == before);  // nothing in /dev/shm
  // Whoever holds the descriptor can neither shrink nor grow the memory under a mapping.
  BOOST_TEST(::ftruncate(seg->descriptor(), 0) != 0);
  BOOST_TEST(errno == EPERM);
  BOOST_TEST(::ftruncate(seg->descriptor(), 1 << 30) != 0);
  // A copy of the descriptor opens the same memory, as a worker that inherited it does.
  std::error_code ec;
  auto other = ch::segment::open(ch::segment::descriptor_address(::dup(seg->descriptor())), ec);
  BOOST_TEST_REQUIRE(!ec, ec.message());
  BOOST_TEST(other->capacity() == 4096U);
  seg->header().to_worker.write_pos.store(12345);
  BOOST_TEST(other->header().to_worker.write_pos.load() == 12345U);
  // Unlinking closes the descriptor; the mapping stays.
  seg->unlink();
  other->unlink();
  BOOST_TEST(seg->descriptor() == -1);
  BOOST_TEST(other->descriptor() == -1);
  other->header().to_parent.write_pos.store(777);
  BOOST_TEST(seg->header().to_parent.write_pos.load() == 777U);
#endif
}

BOOST_AUTO_TEST_CASE(a_descriptor_that_is_not_a_segment_is_refused,
                     *boost::unit_test::precondition(mproc_test::posix_only{
                         "segments are passed by descriptor on Linux only"})) {
#if !defined(_WIN32)
  std::error_code ec;
  BOOST_TEST(ch::segment::open("fd:", ec) == nullptr);
  BOOST_TEST((ec == std::errc::invalid_argument));
  BOOST_TEST(ch::segment::open("fd:12x", ec) == nullptr);
  BOOST_TEST((ec == std::errc::invalid_argument));
  int fds[2];
  BOOST_TEST_REQUIRE(::pipe(fds) == 0);
  BOOST_TEST(ch::segment::open(ch::segment::descriptor_address(fds[0]), ec) == nullptr);
  BOOST_TEST((ec == std::errc::bad_message));
  ::close(fds[1]);
  // A memfd too small for a channel's control block.
  const int small = ::memfd_create("not-a-channel", MFD_CLOEXEC);
  BOOST_TEST_REQUIRE(small >= 0);
  BOOST_TEST_REQUIRE(::ftruncate(small, 100) == 0);
  BOOST_TEST(ch::segment::open(ch::segment::descriptor_address(small), ec) == nullptr);
  BOOST_TEST((ec == std::errc::bad_message));
#endif
}

namespace {

// Sends `sent` from the parent's side of `seg` while the worker's side receives it into
// `received`, from another thread: a message larger than the ring needs both at once.
void send_across(ch::segment& seg, const std::vector<char>& sent, ch::message_header& h,
                 std::vector<char>& received) {
  ch::endpoint parent = seg.parent_endpoint();
  ch::endpoint worker = seg.worker_endpoint();
  auto sender = std::async(std::launch::async,
                           [&] { return parent.send(header_for(sent.size()), sent.data()); });
  BOOST_TEST((worker.receive(h, received) == ch::io_status::ok));
  BOOST_TEST((sender.get() == ch::io_status::ok));
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_message_larger_than_the_ring_streams_through_intact) {
  auto seg = new_segment(4096);
  const std::vector<char> sent = pattern(1 << 20);
  ch::message_header h;
  std::vector<char> received;
  send_across(*seg, sent, h, received);
  BOOST_TEST(h.id == 42U);
  BOOST_TEST(h.size == sent.size());
  BOOST_TEST((received == sent));
}

BOOST_AUTO_TEST_CASE(a_large_message_is_received_into_a_recycled_buffer_with_only_its_bytes) {
  const mproc::detail::spare_buffer_user user;  // what a pool holds
  std::vector<char> old = pattern(std::size_t{3} << 20);
  const void* const old_memory = old.data();
  mproc::detail::recycle_buffer(std::move(old));
  auto seg = new_segment(std::size_t{1} << 20);
  const std::vector<char> sent(std::size_t{2} << 20, 'n');  // smaller: old bytes would show
  ch::message_header h;
  std::vector<char> received;
  send_across(*seg, sent, h, received);
  // No fresh memory to map and zero:
  BOOST_TEST(static_cast<const void*>(received.data()) == old_memory);
  BOOST_TEST((received == sent));
  // A buffer too small to be worth keeping is not handed out again.
  mproc::detail::recycle_buffer(std::move(received));
  std::vector<char> tiny(mproc::detail::spare_buffer_min / 2);
  mproc::detail::recycle_buffer(std::move(tiny));
  const std::vector<char> next = mproc::detail::large_buffer(std::size_t{1} << 20);
  BOOST_TEST(static_cast<const void*>(next.data()) == old_memory);
  BOOST_TEST(next.empty());
}

BOOST_AUTO_TEST_CASE(a_medium_buffer_serves_its_size_class_again) {
  const mproc::detail::spare_buffer_user user;
  // A chunk of a map: a few KiB. Fresh ones are rounded up to a power of two...
  std::vector<char> chunk = mproc::detail::large_buffer(3000);
  BOOST_TEST(chunk.capacity() == 4096U);
  chunk.assign(3000, 'c');
  const void* const memory = chunk.data();
  mproc::detail::recycle_buffer(std::move(chunk));
  // ...so that a later request of the same class gets the same memory, emptied.
  std::vector<char> again = mproc::detail::large_buffer(2500);
  BOOST_TEST(static_cast<const void*>(again.data()) == memory);
  BOOST_TEST(again.empty());
  // A request of a larger class gets room enough elsewhere and leaves the spare in place.
  mproc::detail::recycle_buffer(std::move(again));
  const std::vector<char> larger = mproc::detail::large_buffer(5000);
  BOOST_TEST(larger.capacity() >= 5000U);
  const std::vector<char> third = mproc::detail::large_buffer(3000);
  BOOST_TEST(static_cast<const void*>(third.data()) == memory);
}

BOOST_DATA_TEST_CASE(task_memory_hands_out_distinct_blocks_and_takes_them_back_from_any_thread,
                     bdata::make({std::size_t{200}, std::size_t{500}}), size) {
  namespace d = mproc::detail;
  constexpr std::size_t n = 20000;  // several chunks
  const auto fill = [size](std::vector<unsigned char*>& blocks, unsigned salt) {
    for (std::size_t i = 0; i < n; ++i) {
      blocks.push_back(static_cast<unsigned char*>(d::allocate_task_memory(size)));
      std::memset(blocks.back(), static_cast<int>((i + salt) & 0xff), size);
    }
  };
  const auto intact = [size](const std::vector<unsigned char*>& blocks, unsigned salt) {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < size; ++k) {
        if (blocks[i][k] != static_cast<unsigned char>((i + salt) & 0xff)) return false;
      }
    }
    return true;
  };
  std::vector<unsigned char*> first;
  fill(first, 0);
  BOOST_TEST(intact(first, 0));  // no two blocks overlap
  // Freed by another thread, as a driver frees the state of a future that was dropped.
  std::thread([&] {
    for (std::size_t i = 0; i < n; i += 2) d::free_task_memory(first[i], size);
  }).join();
  std::vector<unsigned char*> second;
  fill(second, 7);
  BOOST_TEST(intact(second, 7));
  for (std::size_t i = 1; i < n; i += 2) {
    BOOST_TEST_REQUIRE(first[i][0] == static_cast<unsigned char>(i & 0xff));  // untouched
    d::free_task_memory(first[i], size);
  }
  for (unsigned char* p : second) d::free_task_memory(p, size);
  void* large = d::allocate_task_memory(d::task_memory_max + 1);  // from the general heap
  std::memset(large, 1, d::task_memory_max + 1);
  d::free_task_memory(large, d::task_memory_max + 1);
}

// The zygote of the fork method is forked from the application: task memory shared with it
// copy-on-write would make every first write to a page after that fork copy the page.
BOOST_AUTO_TEST_CASE(task_memory_is_left_out_of_a_forked_child_which_starts_its_own,
                     *boost::unit_test::precondition(mproc_test::posix_only{"fork"})) {
#if !defined(_WIN32)
  namespace d = mproc::detail;
  const auto mapped_here = [](const void* p) {
    const auto page = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{4095};
    return ::msync(reinterpret_cast<void*>(page), 4096, MS_ASYNC) == 0;
  };
  // Chunks that empty go back to the heap, which may hand their pages out again: a forked child
  // must have those. Chunks from glibc's heap proper (not mapped apart), whose pages stay mapped
  // once freed, show it; the sanitizers' allocators unmap them (or, under ASan, blocks are
  // plain heap blocks), so there only the rest of the test applies.
  ::mallopt(M_MMAP_THRESHOLD, 256 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  std::vector<void*> emptied;
  for (int i = 0; i < 30000; ++i) emptied.push_back(d::allocate_task_memory(200));  // 3 chunks
  for (void* p : emptied) d::free_task_memory(p, 200);
  void* mine = d::allocate_task_memory(200);  // from the one chunk kept
  std::memset(mine, 'p', 200);
  const auto chunk_of = [](const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) >> 21;  // 2 MiB chunks
  };
  std::erase_if(emptied, [&](const void* p) {
    return !mapped_here(p) || (!d::plain_task_memory && chunk_of(p) == chunk_of(mine));
  });
  if (!mproc_test::sanitized_allocator) BOOST_TEST(!emptied.empty());
  const pid_t child = ::fork();
  if (child == 0) {
    for (const void* p : emptied) {
      if (!mapped_here(p)) ::_exit(3);
    }
    // The parent's live block is not mapped here (it is under ASan, where blocks are heap
    // blocks), and the child's own blocks work and are not the parent's.
    if (mapped_here(mine) != d::plain_task_memory) ::_exit(1);
    std::vector<void*> blocks;
    for (int i = 0; i < 20000; ++i) {
      blocks.push_back(d::allocate_task_memory(200));
      std::memset(blocks.back(), 'c', 200);
      if (!d::plain_task_memory && blocks.back() == mine) ::_exit(2);
    }
    for (void* b : blocks) d::free_task_memory(b, 200);
    ::_exit(0);
  }
  int status = -1;
  BOOST_TEST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(static_cast<const char*>(mine)[199] == 'p');
  d::free_task_memory(mine, 200);
  ::mallopt(M_MMAP_THRESHOLD, 128 << 10);  // glibc's default values (no longer adjusted)
  ::mallopt(M_TRIM_THRESHOLD, 128 << 10);
  BOOST_TEST_MESSAGE(emptied.size() << " blocks of emptied chunks still mapped were checked");
#endif
}

BOOST_AUTO_TEST_CASE(many_small_messages_keep_their_order) {
  auto seg = new_segment(4096);
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();
  constexpr int n = 5000;
  auto sender = std::async(std::launch::async, [&] {
    for (int i = 0; i < n; ++i) {
      ch::message_header h = header_for(sizeof i);
      h.id = static_cast<std::uint64_t>(i);
      if (parent.send(h, reinterpret_cast<const char*>(&i)) != ch::io_status::ok) return false;
    }
    return true;
  });
  bool in_order = true;
  for (int i = 0; i < n; ++i) {
    ch::message_header h;
    std::vector<char> payload;
    BOOST_TEST_REQUIRE((worker.receive(h, payload) == ch::io_status::ok));
    int value = -1;
    std::memcpy(&value, payload.data(), sizeof value);
    in_order = in_order && h.id == static_cast<std::uint64_t>(i) && value == i;
  }
  BOOST_TEST(sender.get());
  BOOST_TEST(in_order);
}

BOOST_AUTO_TEST_CASE(a_reader_stops_waiting_at_its_deadline) {
  auto seg = new_segment(4096);
  ch::endpoint parent = seg->parent_endpoint();
  ch::message_header h;
  std::vector<char> payload;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
  BOOST_TEST((parent.receive(h, payload, deadline) == ch::io_status::timed_out));
  BOOST_TEST((std::chrono::steady_clock::now() >= deadline));
}

BOOST_AUTO_TEST_CASE(a_dead_worker_wakes_a_waiting_reader_and_a_blocked_writer) {
  auto seg = new_segment(4096);
  ch::endpoint parent = seg->parent_endpoint();
  auto reader = std::async(std::launch::async, [&] {
    ch::message_header h;
    std::vector<char> payload;
    return parent.receive(h, payload);  // no deadline: only the death can end it
  });
  const std::vector<char> big = pattern(1 << 16);  // more than the ring: the writer blocks
  auto writer = std::async(std::launch::async,
                           [&] { return parent.send(header_for(big.size()), big.data()); });
  seg->mark_worker_gone();
  BOOST_TEST((reader.get() == ch::io_status::peer_gone));
  BOOST_TEST((writer.get() == ch::io_status::peer_gone));
}

// A death may land at any moment of a reader's wait, while it spins or as it goes to sleep: the
// wait ends all the same, and promptly. The delays sweep those moments (the gap between the two
// is a few instructions wide, which this rarely hits: the fix in ring::sleep rests on its
// ordering argument); a wait that missed the death would run into its deadline.
BOOST_AUTO_TEST_CASE(a_death_at_any_moment_of_a_wait_ends_it) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3000; ++i) {
    auto seg = new_segment(4096);
    ch::endpoint parent = seg->parent_endpoint();
    std::atomic<bool> waiting{false};
    std::thread killer([&] {
      while (!waiting.load()) std::this_thread::yield();
      const auto until = clock::now() + std::chrono::nanoseconds((i * 7919) % 60000);
      while (clock::now() < until) {
      }
      seg->mark_worker_gone();
    });
    waiting.store(true);
    ch::message_header h;
    std::vector<char> payload;
    const ch::io_status s = parent.receive(h, payload, clock::now() + std::chrono::seconds(10));
    killer.join();
    BOOST_REQUIRE_MESSAGE(s == ch::io_status::peer_gone, "round " << i << ": the death was missed");
  }
}

BOOST_AUTO_TEST_CASE(data_written_before_the_peer_died_is_still_delivered) {
  auto seg = new_segment(4096);
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();
  const std::vector<char> last = pattern(100);
  BOOST_TEST_REQUIRE((worker.send(header_for(last.size()), last.data()) == ch::io_status::ok));
  seg->mark_worker_gone();
  ch::message_header h;
  std::vector<char> payload;
  BOOST_TEST((parent.receive(h, payload) == ch::io_status::ok));
  BOOST_TEST((payload == last));
  BOOST_TEST((parent.receive(h, payload) == ch::io_status::peer_gone));
}

BOOST_AUTO_TEST_CASE(a_header_with_a_bad_magic_or_checksum_is_a_serialization_error) {
  auto seg = new_segment(4096);
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();
  ch::message_header h = header_for(0);
  std::vector<char> payload;

  ch::seal(h);
  h.magic = 0xdeadbeef;  // raw writes: send() would seal the header again
  BOOST_TEST_REQUIRE(
      (worker.out.write(reinterpret_cast<const char*>(&h), sizeof h) == ch::io_status::ok));
  BOOST_CHECK_THROW(parent.receive(h, payload), mproc::serialization_error);

  // Any one bit flipped after sealing, in any field (the checksum's own included).
  int undetected = 0;
  for (std::size_t bit = 0; bit < 8 * sizeof h; ++bit) {
    h = header_for(0);
    h.key = 0x0123456789abcdefULL;
    ch::seal(h);
    auto* bytes = reinterpret_cast<unsigned char*>(&h);
    bytes[bit / 8] ^= static_cast<unsigned char>(1U << (bit % 8));
    try {
      ch::check(h);
      ++undetected;
    } catch (const mproc::serialization_error&) {
    }
  }
  BOOST_TEST(undetected == 0);
  h = header_for(0);
  ch::seal(h);
  h.id ^= 1;
  BOOST_TEST_REQUIRE(
      (worker.out.write(reinterpret_cast<const char*>(&h), sizeof h) == ch::io_status::ok));
  BOOST_CHECK_THROW(parent.receive(h, payload), mproc::serialization_error);
}

BOOST_AUTO_TEST_CASE(a_header_that_lies_about_its_size_does_not_allocate_it) {
  auto seg = new_segment(4096);
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();
  const std::vector<char> some = pattern(100);
  ch::message_header h = header_for(std::uint64_t{1} << 50);  // a petabyte
  ch::seal(h);
  BOOST_TEST_REQUIRE(
      (worker.out.write(reinterpret_cast<const char*>(&h), sizeof h) == ch::io_status::ok));
  BOOST_TEST_REQUIRE((worker.out.write(some.data(), some.size()) == ch::io_status::ok));
  std::vector<char> payload;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(30);
  BOOST_TEST((parent.receive(h, payload, deadline) == ch::io_status::timed_out));
  BOOST_TEST(payload.capacity() <= (std::size_t{128} << 20));
}

#if !defined(_WIN32)
// A segment whose parent side copies directly, with this process as its worker.
std::shared_ptr<ch::segment> direct_segment() {
  auto seg = new_segment(std::size_t{1} << 16);
  const std::string secret = "the worker's proof";
  seg->header().probe_address.store(reinterpret_cast<std::uintptr_t>(secret.data()));
  BOOST_TEST_REQUIRE(!seg->try_direct_copies(static_cast<int>(::getpid()), secret));
  return seg;
}

// A result lent by the worker's side: the parent reads the pieces of memory it names, here in
// this same process. One block of one call goes straight into a result object of the type the
// task state expects; anything else into the payload; a list of pieces that does not add up is
// a corrupt channel.
BOOST_AUTO_TEST_CASE(a_lent_result_is_read_straight_into_its_object_and_a_bad_one_is_refused) {
  auto seg = direct_segment();
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();

  std::vector<double> values(std::size_t{1} << 17);  // 1 MiB
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i) / 3;
  const std::uint64_t count = values.size();
  const auto* bytes = reinterpret_cast<const char*>(values.data());
  const std::uint64_t size = sizeof count + values.size() * sizeof(double);
  ch::message_header h = header_for(size);
  h.kind = ch::message_kind::result;
  std::uint64_t word = 0;  // the count the worker's side announces; read after lend returns
  const auto lend = [&](const ch::message_header& header, std::uint64_t announced) {
    word = announced;
    BOOST_TEST_REQUIRE((worker.lend(header, {{reinterpret_cast<const char*>(&word), 8},
                                             {bytes, size - 8 - 100},
                                             {bytes + size - 8 - 100, 100}}) == ch::io_status::ok));
  };
  const auto* doubles = mproc::detail::block_result_of<std::vector<double>>();
  std::vector<char> payload;
  ch::message_header got;

  lend(h, count);
  ch::result_sink sink{doubles, nullptr};
  BOOST_TEST_REQUIRE(
      (parent.receive(got, payload, ch::ring::no_deadline(), &sink) == ch::io_status::ok));
  BOOST_TEST(payload.empty());
  BOOST_TEST_REQUIRE(sink.object != nullptr);
  BOOST_TEST((*static_cast<std::vector<double>*>(sink.object.get()) == values));
  BOOST_TEST(seg->header().lent_released.load() == h.id + 1);
  BOOST_TEST((got.code & ch::code_direct) == 0);

  // Without a type, or with a count that disagrees with the size: the bytes as they are.
  for (const auto& [type, announced] :
       {std::pair{doubles, count + 1}, std::pair{doubles, count - 1},
        std::pair{decltype(doubles){nullptr}, count}}) {
    lend(h, announced);
    sink = ch::result_sink{type, nullptr};
    BOOST_TEST_REQUIRE(
        (parent.receive(got, payload, ch::ring::no_deadline(), &sink) == ch::io_status::ok));
    BOOST_TEST(sink.object == nullptr);
    BOOST_TEST_REQUIRE(payload.size() == size);
    std::uint64_t first = 0;
    std::memcpy(&first, payload.data(), sizeof first);
    BOOST_TEST(first == announced);
    BOOST_TEST(std::memcmp(payload.data() + 8, bytes, size - 8) == 0);
  }

  // Pieces that add up to more or less than the header says, or too many or none of them.
  for (const std::uint64_t claimed : {size - 1, size + 1, std::uint64_t{1} << 50}) {
    ch::message_header lie = header_for(claimed);
    lie.kind = ch::message_kind::result;
    lend(lie, count);
    sink = ch::result_sink{doubles, nullptr};
    BOOST_CHECK_THROW(parent.receive(got, payload, ch::ring::no_deadline(), &sink),
                      mproc::serialization_error);
  }
  for (const std::uint64_t pieces : {std::uint64_t{0}, std::uint64_t{5}}) {
    ch::message_header lie = header_for(0);
    lie.kind = ch::message_kind::result;
    lie.code = ch::code_direct;
    ch::seal(lie);
    BOOST_TEST_REQUIRE(
        (worker.out.write(reinterpret_cast<const char*>(&lie), sizeof lie) == ch::io_status::ok));
    BOOST_TEST_REQUIRE((worker.out.write(reinterpret_cast<const char*>(&pieces), sizeof pieces) ==
                        ch::io_status::ok));
    BOOST_CHECK_THROW(parent.receive(got, payload), mproc::serialization_error);
  }
}

// A lent result whose size lies (a petabyte of elements, its count agreeing) is refused without
// allocating it: the reads fail where the worker has no such memory.
BOOST_AUTO_TEST_CASE(a_lent_result_that_lies_about_its_size_does_not_allocate_it) {
  auto seg = direct_segment();
  ch::endpoint parent = seg->parent_endpoint();
  ch::endpoint worker = seg->worker_endpoint();
  const std::uint64_t elements = std::uint64_t{1} << 47;  // of 8 bytes: a petabyte
  // Where the elements are said to be, nothing is mapped.
  void* gone = ::mmap(nullptr, 1 << 16, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  BOOST_TEST_REQUIRE(gone != MAP_FAILED);
  BOOST_TEST_REQUIRE(::munmap(gone, 1 << 16) == 0);
  ch::message_header h = header_for(8 + elements * 8);
  h.kind = ch::message_kind::result;
  BOOST_TEST_REQUIRE(
      (worker.lend(h, {{reinterpret_cast<const char*>(&elements), 8},
                       {static_cast<const char*>(gone), elements * 8}}) == ch::io_status::ok));
  ch::result_sink sink{mproc::detail::block_result_of<std::vector<double>>(), nullptr};
  std::vector<char> payload;
  // Under the sanitizers an allocation of the announced size would end the test at once.
  BOOST_CHECK_THROW(parent.receive(h, payload, ch::ring::no_deadline(), &sink),
                    mproc::serialization_error);
  BOOST_TEST(sink.object == nullptr);
}
#endif

BOOST_AUTO_TEST_CASE(a_malformed_failure_report_is_a_serialization_error) {
  const std::vector<char> good = ch::encode_failure("std::runtime_error", "boom");
  const ch::failure_text f = ch::decode_failure(good.data(), good.size());
  BOOST_TEST(f.type == "std::runtime_error");
  BOOST_TEST(f.message == "boom");
  for (std::size_t cut = 0; cut < good.size(); ++cut) {
    BOOST_CHECK_THROW(ch::decode_failure(good.data(), cut), mproc::serialization_error);
  }
  std::vector<char> longer = good;
  longer.push_back('x');
  BOOST_CHECK_THROW(ch::decode_failure(longer.data(), longer.size()), mproc::serialization_error);
}

BOOST_AUTO_TEST_SUITE_END()
