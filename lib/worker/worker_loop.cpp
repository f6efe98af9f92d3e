#include "worker/worker_loop.hpp"

#include "buffers.hpp"
#include "channel/shared_block.hpp"
#include "exception_text.hpp"
#include "platform/memory.hpp"
#include "platform/pipe.hpp"
#include "platform/process.hpp"
#include "platform/refusal.hpp"
#include "registry.hpp"

#include <mproc/errors.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace mproc::worker {

namespace {

bool g_active = false;

struct outcome {
  channel::message_kind kind = channel::message_kind::result;
  channel::failure_code code{};
};

outcome fail(channel::failure_code code, const std::string& type, const std::string& message,
             std::vector<char>& out) {
  out = channel::encode_failure(type, message);
  return outcome{channel::message_kind::failure, code};
}

// Runs the task `h` names on `args`; its encoded result or failure replaces `out`.
outcome run_task(const channel::message_header& h, const char* args, std::size_t size,
                 std::vector<char>& out, detail::lent_block* lent) {
  out.clear();
  const registry::entry* task = registry::find(h.key);
  if (task == nullptr) {
    return fail(channel::failure_code::unknown_task, "",
                "the worker has no task with this key (is it running a different binary?)", out);
  }
  try {
    task->run(args, size, out, h.count, lent);
  } catch (const detail::decode_failure& f) {
    const detail::exception_text cause = detail::describe_exception(f.cause);
    return fail(channel::failure_code::decode_failed, cause.type,
                "cannot decode the arguments of task '" + std::string(task->name) +
                    "': " + cause.type + ": " + cause.message,
                out);
  } catch (const detail::encode_failure& f) {
    const detail::exception_text cause = detail::describe_exception(f.cause);
    return fail(channel::failure_code::encode_failed, cause.type,
                "cannot encode the result of task '" + std::string(task->name) +
                    "': " + cause.type + ": " + cause.message,
                out);
  } catch (...) {
    const detail::exception_text e = detail::describe_exception(std::current_exception());
    return fail(channel::failure_code::remote_exception, e.type, e.message, out);
  }
  return {};
}

// Address space for the tasks the application writes straight into this worker: the largest
// payload that lands (a larger one comes through the ring).
constexpr std::size_t landing_bytes = sizeof(void*) == 8 ? std::size_t{1} << 30 : 0;

// The landing area, reserved for the worker's life; null where the system has none.
struct landing_area {
  char* base =
      landing_bytes != 0 ? static_cast<char*>(platform::reserve_memory(landing_bytes)) : nullptr;
  landing_area() {
    if (base != nullptr) platform::advise_large_pages(base, landing_bytes);
  }
  ~landing_area() {
    if (base != nullptr) platform::release_memory(base, landing_bytes);
  }
  landing_area(const landing_area&) = delete;
  landing_area& operator=(const landing_area&) = delete;
};

// A result whose bytes the application reads from this worker's memory: its encoded bytes,
// and the result itself where a block of it is lent as it is.
struct lent_result {
  std::uint64_t id = 0;
  std::vector<char> bytes;
  std::shared_ptr<const void> owner;
};

// Takes back the lent results the application has read (`released` is the last one's id + 1);
// the largest becomes `result`'s buffer again.
void reclaim(std::deque<lent_result>& lent, std::uint64_t released, std::vector<char>& result) {
  while (!lent.empty() && lent.front().id < released) {
    if (lent.front().bytes.capacity() > result.capacity()) result.swap(lent.front().bytes);
    lent.pop_front();
  }
}

[[noreturn]] void leave(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  // _Exit: the parent's atexit handlers and static destructors (copied by fork) are not ours.
  std::_Exit(code);
}

// Runs the process function `h` names on `args` and ends this process with its exit code; an
// exception that escapes it is told on stderr, and the exit code is 1.
[[noreturn]] void run_process(const channel::message_header& h, const std::vector<char>& args) {
  const registry::entry* function = registry::find(h.key);
  if (function == nullptr) {
    std::fprintf(stderr,
                 "mproc process: no process function with this key (is it running a "
                 "different binary?)\n");
    leave(2);
  }
  std::vector<char> out;
  try {
    function->run(args.data(), args.size(), out, 1, nullptr);
  } catch (const detail::decode_failure& f) {
    const detail::exception_text cause = detail::describe_exception(f.cause);
    std::fprintf(stderr, "mproc process: cannot decode the arguments of '%.*s': %s: %s\n",
                 static_cast<int>(function->name.size()), function->name.data(), cause.type.c_str(),
                 cause.message.c_str());
    leave(1);
  } catch (...) {
    const detail::exception_text e = detail::describe_exception(std::current_exception());
    std::fprintf(stderr, "mproc process: '%.*s' ended with an exception: %s: %s\n",
                 static_cast<int>(function->name.size()), function->name.data(), e.type.c_str(),
                 e.message.c_str());
    leave(1);
  }
  int code = 0;
  if (out.size() == sizeof code) std::memcpy(&code, out.data(), sizeof code);
  leave(code);
}

}  // namespace

bool active() noexcept { return g_active; }

channel::message_header answer(const channel::message_header& task, const char* args,
                               std::size_t size, std::vector<char>& out, detail::lent_block* lent) {
  const outcome o = run_task(task, args, size, out, lent);
  channel::message_header reply;
  reply.kind = o.kind;
  reply.code = static_cast<std::uint16_t>(o.code);
  reply.id = task.id;
  reply.key = task.key;
  reply.count = task.count;
  reply.size = out.size();
  // A block is lent only by a call that returned: the answer is its result.
  if (lent != nullptr && lent->owner != nullptr) reply.size += lent->size;
  return reply;
}

void serve(const std::shared_ptr<channel::segment>& seg, int lifeline, const std::string& secret) {
  g_active = true;
  detail::forgo_spare_buffers();
  channel::endpoint ep = seg->worker_endpoint();
  try {
    platform::exit_with_parent(lifeline);
  } catch (const std::system_error& e) {
    // Told to the application instead of a hello, which it turns into its start_error.
    const std::vector<char> text = channel::encode_failure(
        "std::system_error", "cannot start its thread that watches the application: " +
                                 platform::explain_refusal(e.code()));
    channel::message_header failure;
    failure.kind = channel::message_kind::failure;
    failure.code = static_cast<std::uint16_t>(channel::failure_code::remote_exception);
    failure.size = text.size();
    (void)ep.send(failure, text.data());
    leave(3);
  }

  // Large tasks land here, written by the application; the address space costs nothing until
  // a task fills it. Reading the secret here (it lives as long as this loop) tells the
  // application that it may.
  const landing_area landing;
  // What the application may write there: all of it where pages come when written; elsewhere
  // (Windows) what is committed, which grows to fit each large task that came through the ring.
  std::size_t landable =
      landing.base != nullptr && platform::memory_maps_on_write() ? landing_bytes : 0;
  channel::segment_header& shared = seg->header();
  shared.landing_address.store(reinterpret_cast<std::uintptr_t>(landing.base),
                               std::memory_order_relaxed);
  shared.landing_capacity.store(landable, std::memory_order_relaxed);
  shared.probe_address.store(reinterpret_cast<std::uintptr_t>(secret.data()),
                             std::memory_order_relaxed);

  channel::message_header hello;
  hello.kind = channel::message_kind::hello;
  hello.key = registry::digest();
  hello.id = static_cast<std::uint64_t>(platform::current_pid());
  // The secret proves who it is; the build identity that it runs the application's build.
  const std::string proof = secret + platform::build_identity();
  hello.size = proof.size();
  if (ep.send(hello, proof.data()) != channel::io_status::ok) leave(0);
  // A forked worker's heap is the application's, shared copy-on-write: the blocks it had freed
  // would be copied page by page when tasks here reuse them. Given back, they come as fresh
  // pages instead.
  platform::return_freed_memory();

  channel::message_header h;
  // Both buffers are kept from task to task, so that a large message after the first finds its
  // memory mapped already; one much larger than usual is released after use.
  constexpr std::size_t kept = std::size_t{128} << 20;
  constexpr auto keep_views = std::chrono::milliseconds(100);
  detail::keep_recent_views();
  platform::keep_freed_memory();
  std::vector<char> payload;
  std::vector<char> result;
  std::deque<lent_result> lent;  // oldest first, until the application has read them
  for (;;) {
    try {
      // Shared arrays stay mapped while tasks keep coming; an idle worker unmaps them, so that
      // an array the application released does not live on in its memory.
      if (ep.in.wait_readable(std::chrono::steady_clock::now() + keep_views) ==
          channel::io_status::timed_out) {
        detail::release_recent_views();
        // Results read meanwhile are taken back, and a very large one let go.
        reclaim(lent, shared.lent_released.load(std::memory_order_acquire), result);
        if (result.capacity() > kept) std::vector<char>().swap(result);
        platform::return_freed_memory();
      }
      if (ep.receive(h, payload) != channel::io_status::ok) leave(0);
    } catch (const std::exception&) {
      leave(3);  // corrupt channel: nothing can be trusted any more
    }
    if (h.kind == channel::message_kind::shutdown) break;
    if (h.kind == channel::message_kind::run) run_process(h, payload);
    if (h.kind != channel::message_kind::task) leave(3);
    const bool landed = (h.code & channel::code_direct) != 0;
    if (landed && (landing.base == nullptr || h.size > landable)) leave(3);
    // Once the application copies directly, large tasks may land and a large block of a result
    // is lent from the result's own memory, not copied into `result` first.
    const bool lending = shared.direct.load(std::memory_order_acquire) != 0;
    if (lending && !landed && landing.base != nullptr && h.size >= channel::direct_threshold &&
        h.size > landable && h.size <= landing_bytes) {
      // Committed in whole MiB, so that a task of about the same size lands next time.
      constexpr std::size_t unit = std::size_t{1} << 20;
      const std::size_t want =
          std::min(landing_bytes, (static_cast<std::size_t>(h.size) + unit - 1) / unit * unit);
      if (platform::commit_memory(landing.base, want)) {
        landable = want;
        shared.landing_capacity.store(landable, std::memory_order_release);
      }
    }
    reclaim(lent, shared.lent_released.load(std::memory_order_acquire), result);
    detail::lent_block block;
    if (lending) block.min_size = channel::direct_threshold;
    const channel::message_header reply =
        landed ? answer(h, landing.base, static_cast<std::size_t>(h.size), result, &block)
               : answer(h, payload.data(), payload.size(), result, &block);
    if (landed) {
      shared.landed_done.fetch_add(1, std::memory_order_release);
      if (h.size > kept) platform::discard_memory(landing.base, static_cast<std::size_t>(h.size));
    }
    channel::io_status sent = channel::io_status::ok;
    if (reply.kind == channel::message_kind::result && reply.size >= channel::direct_threshold &&
        lending) {
      const char* bytes = result.data();
      sent = block.owner == nullptr
                 ? ep.lend(reply, {{bytes, result.size()}})
                 : ep.lend(reply, {{bytes, block.at},
                                   {block.data, block.size},
                                   {bytes + block.at, result.size() - block.at}});
      lent.push_back({reply.id, std::move(result), std::move(block.owner)});
      result = {};
    } else {
      sent = ep.send(reply, result.data());
    }
    if (sent != channel::io_status::ok) leave(0);
    for (std::vector<char>* buffer : {&payload, &result}) {
      if (buffer->capacity() > kept) std::vector<char>().swap(*buffer);
    }
  }
  leave(0);
}

void serve_at(const std::string& address, int lifeline, const std::string& secret) {
  std::error_code ec;
  std::shared_ptr<channel::segment> seg;
  try {
    seg = channel::segment::open(address, ec);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  if (seg == nullptr) {
    const std::string why = ec == std::errc::bad_message ? "it is malformed" : ec.message();
    std::fprintf(stderr, "mproc worker: cannot attach to the pool's shared memory '%s': %s\n",
                 address.c_str(), why.c_str());
    leave(2);
  }
  // The name (or descriptor) has done its job: removing it here, as well as in the
  // application, shortens the time it exists to the few milliseconds a worker takes to start.
  seg->unlink();
  serve(seg, lifeline, secret);
}

void serve_spawned(const std::string& token) {
  platform::reset_signals_in_worker();
  const std::size_t comma = token.rfind(',');
  int lifeline = -1;
  if (comma != std::string::npos) lifeline = std::atoi(token.c_str() + comma + 1);
  if (lifeline < 0) {
    std::fprintf(stderr, "mproc worker: malformed worker argument '%s'\n", token.c_str());
    leave(2);
  }
  // The secret comes first through the lifeline, which only the application could write.
  std::string secret(secret_size, '\0');
  if (!platform::read_all(lifeline, secret.data(), secret.size())) leave(0);
  serve_at(token.substr(0, comma), lifeline, secret);
}

}  // namespace mproc::worker
