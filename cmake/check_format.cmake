# Fails when clang-format would change any C++ file of the project. Inputs: SOURCE_DIR, CLANG_FORMAT.
file(GLOB_RECURSE files
  ${SOURCE_DIR}/include/*.hpp ${SOURCE_DIR}/lib/*.hpp ${SOURCE_DIR}/lib/*.cpp
  ${SOURCE_DIR}/tests/*.hpp ${SOURCE_DIR}/tests/*.cpp ${SOURCE_DIR}/samples/*.cpp
  ${SOURCE_DIR}/bench/*.cpp)
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${files} RESULT_VARIABLE rc
                ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format would change these files (run clang-format -i on them):\n${out}")
endif()
