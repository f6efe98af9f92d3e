#pragma once
// What the Windows files of the platform layer share: handles as ints, UTF-8 and UTF-16, and
// the last error as an exception.

#include <algorithm>
#include <cstdint>
#include <string>
#include <system_error>

#include <windows.h>

namespace mproc::platform {

// Windows guarantees that kernel handles fit in 32 bits (HandleToLong / LongToHandle), which
// lets them share the int-based interface with POSIX descriptors.
inline HANDLE to_handle(std::intptr_t value) noexcept { return reinterpret_cast<HANDLE>(value); }
inline int to_int(HANDLE h) noexcept {
  return static_cast<int>(reinterpret_cast<std::intptr_t>(h));
}

inline std::string narrow(const wchar_t* text, int length = -1) {
  const int n = ::WideCharToMultiByte(CP_UTF8, 0, text, length, nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<std::size_t>(std::max(n, 0)), '\0');
  ::WideCharToMultiByte(CP_UTF8, 0, text, length, out.data(), n, nullptr, nullptr);
  if (length < 0 && !out.empty()) out.pop_back();  // the terminating zero
  return out;
}

inline std::wstring widen(const std::string& text) {
  const int n =
      ::MultiByteToWideChar(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), nullptr, 0);
  std::wstring out(static_cast<std::size_t>(n), L'\0');
  ::MultiByteToWideChar(CP_UTF8, 0, text.data(), static_cast<int>(text.size()), out.data(), n);
  return out;
}

inline std::system_error last_error(const std::string& what) {
  return {static_cast<int>(::GetLastError()), std::system_category(), what};
}

}  // namespace mproc::platform
