# Installs the built mproc into a fresh prefix, builds the consumer against it with
# find_package, runs it under fork and spawn; then builds it again through add_subdirectory.
# Inputs: BUILD_DIR (mproc's build tree), SOURCE_DIR (mproc's sources), WORK_DIR, CXX, CONFIG,
# FLAGS (compile and link flags our targets used, e.g. sanitizers).
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message(STATUS "${out}")
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${command}")
  endif()
endfunction()

set(common -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=${CONFIG} "-DCMAKE_CXX_FLAGS=${FLAGS}"
           "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/installed"
    -DCMAKE_PREFIX_PATH=${prefix} ${common})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/installed")
run("${WORK_DIR}/installed/consumer" --start-method=fork --workers=2)
run("${WORK_DIR}/installed/consumer" --start-method=spawn --workers=2)

run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/subdirectory"
    -DMPROC_SOURCE_DIR=${SOURCE_DIR} ${common})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/subdirectory" -j 2)
run("${WORK_DIR}/subdirectory/consumer" --start-method=spawn --workers=2)
file(REMOVE_RECURSE "${WORK_DIR}")
