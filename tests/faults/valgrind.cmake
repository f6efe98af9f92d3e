# Runs a pool program (the seed_compare sample, built without sanitizers) under valgrind with
# every start method: valgrind has no pidfd_open, and a pool must work without one. Valgrind
# follows the application and, under fork, its zygote and workers (forked, not executed).
if(NOT VALGRIND)
  message(FATAL_ERROR "valgrind is missing: install Debian's valgrind package (.ci/deps does)")
endif()
foreach(method IN ITEMS fork spawn forkserver)
  execute_process(
    COMMAND ${VALGRIND} -q --error-exitcode=99 ${PROGRAM} --start-method=${method} --workers=2
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 180)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "all three runs agree")
    message(FATAL_ERROR "under valgrind with ${method}: exit ${rc}\n${out}\n${err}")
  endif()
  message(STATUS "valgrind, ${method}: the pool ran to completion")
endforeach()
