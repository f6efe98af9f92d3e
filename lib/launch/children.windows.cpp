#include "launch/children.hpp"

#include "launch/boost_process.hpp"
#include "platform/handle.windows.hpp"

#include <boost/asio/post.hpp>
#include <boost/process/v2/windows/default_launcher.hpp>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

namespace mproc::launch {

namespace {

// An initializer of windows::default_launcher: the child inherits exactly these handles
// (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), never another worker's.
struct inherit_handles {
  std::vector<HANDLE> handles;
  std::vector<char> storage;  // the attribute list, alive until CreateProcessW has returned

  explicit inherit_handles(std::vector<HANDLE> h) : handles(std::move(h)) {}
  inherit_handles(const inherit_handles&) = delete;
  inherit_handles& operator=(const inherit_handles&) = delete;

  bp2::error_code on_setup(bp2::windows::default_launcher& launcher,
                           const std::filesystem::path& /*exe*/, const std::wstring& /*line*/) {
    SIZE_T size = 0;
    ::InitializeProcThreadAttributeList(nullptr, 1, 0, &size);
    storage.resize(size);
    auto* list = reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(storage.data());
    if (!::InitializeProcThreadAttributeList(list, 1, 0, &size)) {
      storage.clear();
      return last();
    }
    for (HANDLE h : handles) {
      if (!::SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT)) return last();
    }
    if (!::UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, handles.data(),
                                     handles.size() * sizeof(HANDLE), nullptr, nullptr)) {
      return last();
    }
    launcher.startup_info.lpAttributeList = list;
    launcher.inherit_handles = true;
    return {};
  }

  // 1.81 never calls an initializer's on_error (its detector expects another signature): the
  // handles stop being inheritable here, whatever happened.
  ~inherit_handles() {
    for (HANDLE h : handles) ::SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
    if (!storage.empty()) {
      ::DeleteProcThreadAttributeList(
          reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(storage.data()));
    }
  }

  static bp2::error_code last() {
    return {static_cast<int>(::GetLastError()), bp2::system_category()};
  }
};

// Failures about the program itself, which no retry mends.
bool lasting(const bp2::error_code& ec) {
  const auto e = static_cast<DWORD>(ec.value());
  return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND || e == ERROR_ACCESS_DENIED ||
         e == ERROR_BAD_EXE_FORMAT;
}

}  // namespace

struct children::impl {
  struct child {
    std::unique_ptr<owned_process> process;
    std::optional<platform::exit_status> status;  // set once its wait completed
  };

  explicit impl(exit_watcher& w) : watcher(w) {}

  exit_watcher& watcher;
  std::mutex mutex;
  std::condition_variable reaped_cv;  // notified with mutex held
  std::map<int, child> table;         // guarded by mutex
};

children::children(exit_watcher& watcher) : impl_(std::make_unique<impl>(watcher)) {}

// A process object's destructor kills a child it still owns.
children::~children() = default;

std::error_code children::start(const std::string& exe, const std::string& /*name*/,
                                const std::vector<std::string>& args,
                                const std::vector<std::pair<int, int>>& inherit, int& pid,
                                int& tries) {
  if (const std::error_code ec = impl_->watcher.error()) return ec;
  std::vector<std::wstring> wide_args;
  for (const std::string& a : args) wide_args.push_back(platform::widen(a));
  std::vector<HANDLE> handles;
  for (const auto& [value, target] : inherit) handles.push_back(platform::to_handle(value));
  const std::filesystem::path program(platform::widen(exe));
  bp2::error_code ec;
  // A failure that is not about the program itself (seen under Wine as ERROR_INTERNAL_ERROR
  // while other processes were being torn down) is tried again before it becomes an error.
  for (tries = 1;; ++tries) {
    // `auto`, never another process type: the conversion would kill the child (see
    // boost_process.hpp).
    auto p = bp2::windows::default_launcher{}(impl_->watcher.context().get_executor(), ec, program,
                                              wide_args, inherit_handles(handles));
    if (!ec) {
      // Should the job refuse it (a job that forbids nesting), the lifeline still ends it.
      platform::join_worker_job(platform::to_int(p.native_handle()));
      pid = static_cast<int>(p.id());
      std::lock_guard lock(impl_->mutex);
      impl_->table[pid].process = std::make_unique<owned_process>(std::move(p));
      return {};
    }
    if (lasting(ec) || tries == 3) return {ec.value(), std::system_category()};
  }
}

std::error_code children::watch(int pid, std::function<void()> on_exit) {
  owned_process* p = nullptr;
  {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->table.find(pid);
    if (it == impl_->table.end()) return std::make_error_code(std::errc::no_such_process);
    p = it->second.process.get();  // stays until `reap` has seen its status
  }
  // Waits are initiated on the watcher's thread: an I/O object is not for two threads at once.
  boost::asio::post(impl_->watcher.context(), [this, p, pid, call = std::move(on_exit)] {
    p->async_wait([this, p, pid, call](bp2::error_code ec, int) {
      {
        std::lock_guard lock(impl_->mutex);
        impl_->table.at(pid).status =
            ec ? platform::exit_status{}
               : platform::exit_status_of(static_cast<int>(p->native_exit_code()));
      }
      impl_->reaped_cv.notify_all();
      call();
    });
  });
  return {};
}

int children::open_handle(int pid) noexcept {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->table.find(pid);
  if (it == impl_->table.end()) return -1;
  HANDLE copy = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), it->second.process->native_handle(),
                         ::GetCurrentProcess(), &copy, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
    return -1;
  }
  return platform::to_int(copy);
}

platform::exit_status children::reap(int pid, clock::time_point deadline) {
  std::unique_lock lock(impl_->mutex);
  if (impl_->table.count(pid) == 0) return {};
  if (!impl_->reaped_cv.wait_until(lock, deadline,
                                   [&] { return impl_->table.at(pid).status.has_value(); })) {
    return {};  // its wait still runs: the entry stays until it completes or we are destroyed
  }
  const platform::exit_status st = *impl_->table.at(pid).status;
  impl_->table.erase(pid);
  return st;
}

}  // namespace mproc::launch
