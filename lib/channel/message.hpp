#pragma once
// Message framing: the fixed header every message starts with, and the failure payload. A
// header is checked before anything in it is used; nothing in a payload is trusted either.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mproc::channel {

/// What a message is.
enum class message_kind : std::uint16_t {
  hello = 1,  ///< worker → parent: the loop is running; `key` is the registry digest
  task,       ///< parent → worker: run `count` calls of task `key`
  result,     ///< worker → parent: the encoded results of task `id`
  failure,    ///< worker → parent: task `id` failed; `code` says how (see failure_code)
  shutdown,   ///< parent → worker: leave the loop and exit
  run         ///< parent → worker: run the process function `key` once, exit with its code
};

/// Why a task failed in its worker.
enum class failure_code : std::uint16_t {
  remote_exception = 1,  ///< the task threw
  decode_failed,         ///< its arguments could not be decoded
  encode_failed,         ///< its result could not be encoded
  unknown_task           ///< the worker has no task under that key
};

/// The fixed header in front of every message; readable without decoding the payload.
struct message_header {
  static constexpr std::uint32_t magic_value = 0x4d50524fU;  // "MPRO"
  std::uint32_t magic = magic_value;
  message_kind kind = message_kind::task;
  std::uint16_t code = 0;
  std::uint32_t count = 0;
  std::uint32_t checksum = 0;  // of every other field
  std::uint64_t id = 0;
  std::uint64_t key = 0;
  std::uint64_t size = 0;
};

/// Sets the magic number and the checksum of `h`.
void seal(message_header& h) noexcept;

/// Throws `serialization_error` unless `h` is a well-formed, sealed header.
void check(const message_header& h);

/// Encodes a failure payload: the exception's type name and message.
std::vector<char> encode_failure(const std::string& type, const std::string& message);

/// A decoded failure payload.
struct failure_text {
  std::string type;
  std::string message;
};

/// Decodes a failure payload; throws `serialization_error` if it is malformed.
failure_text decode_failure(const char* data, std::size_t size);

}  // namespace mproc::channel
