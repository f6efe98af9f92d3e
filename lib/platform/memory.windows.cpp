#include "platform/memory.hpp"

namespace mproc::platform {

void prefault(void* /*p*/, std::size_t /*bytes*/) noexcept {
  // Large pages on Windows need a privilege that ordinary accounts lack.
}

void advise_large_pages(void* /*p*/, std::size_t /*bytes*/) noexcept {}

void exclude_from_fork(void* /*p*/, std::size_t /*bytes*/) noexcept {}  // no fork on Windows

void include_in_fork(void* /*p*/, std::size_t /*bytes*/) noexcept {}

}  // namespace mproc::platform
