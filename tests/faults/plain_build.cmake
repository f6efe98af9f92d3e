# Builds the library, refusal_probe and a sample without sanitizers into WORK_DIR, for the
# tests that cannot run sanitized (valgrind; a descriptor limit, since UBSan opens pipes).
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR} -DCMAKE_CXX_COMPILER=${CXX}
          -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_BUILD_BENCH=OFF -DMPROC_INSTALL=OFF
          -DMPROC_WARNINGS_AS_ERRORS=ON
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the plain build failed")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR} --parallel 2 --target refusal_probe seed_compare
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the plain probe and sample failed")
endif()
