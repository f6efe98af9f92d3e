// The per-worker state an initializer leaves behind (see mproc::worker_state).

#include <mproc/initializer.hpp>

#include <boost/core/demangle.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <typeindex>

namespace mproc::detail {

namespace {

// Only the worker's one task thread touches it: tasks run one at a time.
struct state_slot {
  std::shared_ptr<void> object;
  const std::type_info* type = nullptr;
};

state_slot& slot() {
  static state_slot s;
  return s;
}

}  // namespace

void set_worker_state(std::shared_ptr<void> object, const std::type_info& type) {
  slot().object = std::move(object);
  slot().type = &type;
}

void* worker_state_of(const std::type_info& type) {
  const state_slot& s = slot();
  if (s.type == nullptr) {
    throw std::logic_error("mproc::worker_state<" + boost::core::demangle(type.name()) +
                           ">(): this process has no worker state (no initializer ran here; "
                           "set pool_options::initializer = mproc::bind<f>(...))");
  }
  if (std::type_index(*s.type) != std::type_index(type)) {
    throw std::logic_error("mproc::worker_state<" + boost::core::demangle(type.name()) +
                           ">(): the initializer made a " + boost::core::demangle(s.type->name()));
  }
  return s.object.get();
}

}  // namespace mproc::detail
