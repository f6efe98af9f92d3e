# Installs the built mproc into a fresh prefix, builds the consumer against it with
# find_package, runs it under each of METHODS; then builds it again through add_subdirectory.
# Inputs: BUILD_DIR (mproc's build tree), SOURCE_DIR (mproc's sources), WORK_DIR, CXX, CONFIG,
# FLAGS (compile and link flags our targets used, e.g. sanitizers), METHODS (a ;-list);
# with MPIEXEC, also builds tests/consumer_mpi against the prefix and runs it on 2 ranks.
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
# The consumer program in `dir`, wherever the generator put it (multi-config ones add a folder).
function(consumer_in dir out)
  file(GLOB_RECURSE found "${dir}/consumer" "${dir}/consumer.exe")
  list(GET found 0 first)
  set(${out} "${first}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}" --config ${CONFIG})
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/installed"
    -DCMAKE_PREFIX_PATH=${prefix} ${common})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/installed" --config ${CONFIG})
consumer_in("${WORK_DIR}/installed" consumer)
foreach(method IN LISTS METHODS)
  run("${consumer}" --start-method=${method} --workers=2)
endforeach()

if(MPIEXEC)
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer_mpi" -B "${WORK_DIR}/installed_mpi"
      -DCMAKE_PREFIX_PATH=${prefix} ${common})
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/installed_mpi" --config ${CONFIG})
  file(GLOB_RECURSE consumer_mpi "${WORK_DIR}/installed_mpi/consumer_mpi")
  run(${MPIEXEC} -n 2 ${consumer_mpi})
endif()

run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/subdirectory"
    -DMPROC_SOURCE_DIR=${SOURCE_DIR} ${common})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/subdirectory" --config ${CONFIG} -j 2)
consumer_in("${WORK_DIR}/subdirectory" consumer)
run("${consumer}" --start-method=spawn --workers=2)
file(REMOVE_RECURSE "${WORK_DIR}")
