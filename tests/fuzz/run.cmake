# Builds the message fuzzer with clang's libFuzzer and runs it for a bounded time.
# Inputs: CLANGXX, SOURCE_DIR, WORK_DIR, SECONDS.
file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
set(sources
  ${SOURCE_DIR}/tests/fuzz/message_fuzzer.cpp
  ${SOURCE_DIR}/lib/channel/channel.cpp
  ${SOURCE_DIR}/lib/channel/message.cpp
  ${SOURCE_DIR}/lib/codec.cpp
  ${SOURCE_DIR}/lib/errors.cpp
  ${SOURCE_DIR}/lib/platform/exit_status.cpp
  ${SOURCE_DIR}/lib/platform/memory.posix.cpp
  ${SOURCE_DIR}/lib/platform/own_threads.cpp
  ${SOURCE_DIR}/lib/platform/pipe.posix.cpp
  ${SOURCE_DIR}/lib/platform/process.posix.cpp
  ${SOURCE_DIR}/lib/platform/random.cpp
  ${SOURCE_DIR}/lib/platform/refusal.cpp
  ${SOURCE_DIR}/lib/platform/shared_memory.posix.cpp
  ${SOURCE_DIR}/lib/platform/wake.posix.cpp)
execute_process(
  COMMAND ${CLANGXX} -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined
          -fno-sanitize-recover=all -I${SOURCE_DIR}/include -I${SOURCE_DIR}/lib ${sources}
          -pthread -o ${WORK_DIR}/message_fuzzer
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cannot build the fuzzer:\n${out}")
endif()
execute_process(
  COMMAND ${WORK_DIR}/message_fuzzer -max_total_time=${SECONDS} -max_len=4096 -rss_limit_mb=2048
          -print_final_stats=1 ${WORK_DIR}/corpus
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REGEX MATCH "Done [0-9]+ runs in [0-9]+ second\\(s\\)" done "${out}")
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" units "${out}")
message(STATUS "fuzzing: ${done} (${units})")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the fuzzer found a crash:\n${out}")
endif()
