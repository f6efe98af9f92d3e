# mproc_target_options(<target>): warnings and sanitizers for mproc's own targets only.
function(mproc_target_options target)
  if(MSVC)
    # /bigobj: test files with many template instances exceed COFF's default section limit.
    target_compile_options(${target} PRIVATE /W4 /permissive- /bigobj)
    if(MPROC_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wconversion -Wshadow)
    if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
      # The MPROC_GUARDED_BY / MPROC_REQUIRES annotations (mproc/detail/thread_safety.hpp).
      target_compile_options(${target} PRIVATE -Wthread-safety)
    endif()
    if(MINGW)
      target_compile_options(${target} PRIVATE -Wa,-mbig-obj)  # as /bigobj above
    endif()
    if(MPROC_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
  if(MPROC_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${MPROC_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${MPROC_SANITIZE})
    if(MPROC_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # Boost's headers use std::atomic_thread_fence, which GCC warns TSan does not model.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()
