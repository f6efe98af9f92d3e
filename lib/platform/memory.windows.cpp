#include "platform/memory.hpp"

namespace mproc::platform {

void prefault(void* /*p*/, std::size_t /*bytes*/) noexcept {
  // Large pages on Windows need a privilege that ordinary accounts lack.
}

void advise_large_pages(void* /*p*/, std::size_t /*bytes*/) noexcept {}

void exclude_from_fork(void* /*p*/, std::size_t /*bytes*/) noexcept {}  // no fork on Windows

void include_in_fork(void* /*p*/, std::size_t /*bytes*/) noexcept {}

// Windows has ReadProcessMemory and WriteProcessMemory on the handles a pool holds; large
// messages take the shared-memory rings there for now.
std::error_code read_process_memory(int /*pid*/, std::uint64_t /*remote*/, void* /*local*/,
                                    std::size_t /*bytes*/) noexcept {
  return std::make_error_code(std::errc::function_not_supported);
}

std::error_code write_process_memory(int /*pid*/, std::uint64_t /*remote*/, const void* /*local*/,
                                     std::size_t /*bytes*/) noexcept {
  return std::make_error_code(std::errc::function_not_supported);
}

void* reserve_memory(std::size_t /*bytes*/) noexcept { return nullptr; }

void discard_memory(void* /*p*/, std::size_t /*bytes*/) noexcept {}

void release_memory(void* /*p*/, std::size_t /*bytes*/) noexcept {}

void keep_freed_memory() noexcept {}

void return_freed_memory() noexcept {}

}  // namespace mproc::platform
