#include "platform/process.hpp"

#include <mproc/detail/codec.hpp>

namespace mproc::detail {

void prefault_buffer(void* p, std::size_t bytes) noexcept { platform::prefault(p, bytes); }

}  // namespace mproc::detail
