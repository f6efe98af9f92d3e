#include "mpi/wire.hpp"

#include "exception_text.hpp"
#include "registry.hpp"

#include <mproc/errors.hpp>

#include <boost/version.hpp>

#include <optional>

namespace mproc::mpi_wire {

namespace {

// Raised when the wire format changes: ranks of different mproc versions do not mix.
constexpr std::uint32_t abi_version = 1;

enum class error_kind : std::uint8_t {
  remote,
  crashed,
  timeout,
  serialization,
  start,
  cancelled,
  closed,
  other,
};

void put_optional(writer& out, const std::optional<int>& value) {
  out.put<std::uint8_t>(value.has_value() ? 1 : 0);
  out.put<std::int32_t>(value.value_or(0));
}

std::optional<int> get_optional(reader& in) {
  const bool has = in.get<std::uint8_t>() != 0;
  const int value = in.get<std::int32_t>();
  return has ? std::optional<int>(value) : std::nullopt;
}

}  // namespace

void writer::put_bytes(std::string_view text) {
  put<std::uint64_t>(text.size());
  out_.insert(out_.end(), text.begin(), text.end());
}

const char* reader::take(std::size_t n) {
  if (n > size_ - at_) {
    throw serialization_error("a message between MPI ranks is truncated: " + std::to_string(n) +
                              " more bytes were expected at byte " + std::to_string(at_) + " of " +
                              std::to_string(size_));
  }
  const char* p = data_ + at_;
  at_ += n;
  return p;
}

std::string_view reader::get_bytes() {
  const auto n = static_cast<std::size_t>(get<std::uint64_t>());
  return {take(n), n};
}

void put_error(writer& out, const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const remote_error& e) {
    out.put(error_kind::remote);
    out.put_bytes(e.type());
    out.put_bytes(e.message());
  } catch (const worker_crashed& e) {
    out.put(error_kind::crashed);
    out.put<std::int64_t>(e.pid());
    put_optional(out, e.exit_code());
    put_optional(out, e.signal());
  } catch (const task_timeout& e) {
    out.put(error_kind::timeout);
    out.put<std::int64_t>(e.limit().count());
  } catch (const serialization_error& e) {
    out.put(error_kind::serialization);
    out.put_bytes(e.what());
  } catch (const start_error& e) {
    out.put(error_kind::start);
    out.put_bytes(e.what());
  } catch (const cancelled_error&) {
    out.put(error_kind::cancelled);
  } catch (const pool_closed&) {
    out.put(error_kind::closed);
  } catch (...) {
    const detail::exception_text text = detail::describe_exception(std::current_exception());
    out.put(error_kind::other);
    out.put_bytes(text.type);
    out.put_bytes(text.message);
  }
}

std::exception_ptr get_error(reader& in, const std::string& task) {
  switch (in.get<error_kind>()) {
    case error_kind::remote:
    case error_kind::other: {
      const std::string type(in.get_bytes());
      return std::make_exception_ptr(remote_error(type, std::string(in.get_bytes())));
    }
    case error_kind::crashed: {
      const auto pid = static_cast<int>(in.get<std::int64_t>());
      const std::optional<int> code = get_optional(in);
      return std::make_exception_ptr(worker_crashed(pid, code, get_optional(in), task));
    }
    case error_kind::timeout:
      return std::make_exception_ptr(
          task_timeout(std::chrono::milliseconds(in.get<std::int64_t>()), task));
    case error_kind::serialization:
      return std::make_exception_ptr(serialization_error(std::string(in.get_bytes())));
    case error_kind::start:
      return std::make_exception_ptr(start_error(std::string(in.get_bytes())));
    case error_kind::cancelled:
      return std::make_exception_ptr(cancelled_error());
    case error_kind::closed:
      return std::make_exception_ptr(pool_closed());
  }
  throw serialization_error("a result from an MPI rank has an unknown kind of error");
}

identity own_identity() {
  identity id;
  id.registry_digest = registry::digest();
  id.task_count = registry::count();
  id.boost_version = BOOST_VERSION;
  id.abi_version = abi_version;
  id.byte_order = 0x01020304;
  id.long_size = sizeof(long);
  return id;
}

std::string differences(const identity& theirs, const identity& ours) {
  std::string d;
  const auto add = [&d](const std::string& what) { d += (d.empty() ? "" : "; ") + what; };
  const auto pair = [](auto t, auto o) {
    return std::to_string(t) + " here against " + std::to_string(o) + " on rank 0";
  };
  if (theirs.abi_version != ours.abi_version) {
    add("mproc's wire version is " + pair(theirs.abi_version, ours.abi_version));
  }
  if (theirs.boost_version != ours.boost_version) {
    add("BOOST_VERSION is " + pair(theirs.boost_version, ours.boost_version));
  }
  if (theirs.byte_order != ours.byte_order || theirs.long_size != ours.long_size) {
    add("the machine's byte order or sizeof(long) differs");
  }
  if (theirs.task_count != ours.task_count) {
    add("its program registers " + std::to_string(theirs.task_count) + " tasks, rank 0's " +
        std::to_string(ours.task_count));
  } else if (theirs.registry_digest != ours.registry_digest) {
    add("its program registers other tasks than rank 0's (the same number, other names)");
  }
  return d;
}

}  // namespace mproc::mpi_wire
