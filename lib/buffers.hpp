#pragma once
// Spare byte buffers of messages (detail::large_buffer, detail::recycle_buffer).

namespace mproc::detail {

/// Stops this process from keeping or taking spare buffers (a worker keeps its own).
void forgo_spare_buffers() noexcept;

/// Lets spare buffers be kept while it exists; when the last one ends they are freed.
///
/// Each pool holds one: an application that no longer runs a pool holds no spare memory.
class spare_buffer_user {
 public:
  spare_buffer_user();
  ~spare_buffer_user();
  spare_buffer_user(const spare_buffer_user&) = delete;
  spare_buffer_user& operator=(const spare_buffer_user&) = delete;
};

}  // namespace mproc::detail
