# Installs the built mproc into a fresh prefix, builds the consumer against it with
# find_package, runs it under each of METHODS; builds it against the build tree; packages mproc
# with cpack -G DEB, extracts the package and builds the consumer against it with find_package
# and with pkg-config; then builds it again through FetchContent on the source tree.
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

# From the build tree (export()).
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build_tree"
    -Dmproc_DIR=${BUILD_DIR} ${common})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build_tree" --config ${CONFIG})
consumer_in("${WORK_DIR}/build_tree" consumer)
run("${consumer}" --start-method=spawn --workers=2)

# The Debian package, extracted into a root of its own as dpkg would install it.
if(DEB)
  run(cpack -G DEB -C ${CONFIG} --config "${BUILD_DIR}/CPackConfig.cmake" -B "${WORK_DIR}/package")
  file(GLOB deb "${WORK_DIR}/package/*.deb")
  execute_process(COMMAND dpkg-deb -f ${deb} Depends OUTPUT_VARIABLE depends)
  if(NOT depends MATCHES "libboost-serialization1\\.81-dev")
    message(FATAL_ERROR "the package does not depend on libboost-serialization1.81-dev: ${depends}")
  endif()
  run(dpkg-deb -x ${deb} "${WORK_DIR}/root")
  foreach(f usr/lib/libmproc.a usr/include/mproc/mproc.hpp usr/lib/cmake/mproc/mproc-config.cmake
            usr/lib/pkgconfig/mproc.pc usr/share/doc/mproc/copyright)
    if(NOT EXISTS "${WORK_DIR}/root/${f}")
      message(FATAL_ERROR "the package has no /${f}")
    endif()
  endforeach()
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/deb_find_package"
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/root/usr ${common})
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/deb_find_package" --config ${CONFIG})
  consumer_in("${WORK_DIR}/deb_find_package" consumer)
  run("${consumer}" --start-method=fork --workers=2)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${WORK_DIR}/root/usr/lib/pkgconfig
            pkg-config --cflags --libs mproc
    OUTPUT_VARIABLE pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs mproc failed")
  endif()
  separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
  separate_arguments(flags UNIX_COMMAND "${FLAGS}")
  run(${CXX} ${flags} "${SOURCE_DIR}/tests/consumer/main.cpp" ${pc_flags}
      -o "${WORK_DIR}/consumer_pkg_config")
  run("${WORK_DIR}/consumer_pkg_config" --start-method=spawn --workers=2)
endif()

run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/subdirectory"
    -DMPROC_SOURCE_DIR=${SOURCE_DIR} ${common})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/subdirectory" --config ${CONFIG} -j 2)
consumer_in("${WORK_DIR}/subdirectory" consumer)
run("${consumer}" --start-method=spawn --workers=2)
file(REMOVE_RECURSE "${WORK_DIR}")
