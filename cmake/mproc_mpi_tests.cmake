# What a test run under mpiexec needs on a build machine: Open MPI's consent to run as root,
# more ranks than cores, and loopback only (no network). Through the environment, not flags.
set(mproc_mpi_environment
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1;OMPI_MCA_btl=self,vader,tcp;OMPI_MCA_btl_tcp_if_include=lo;OMPI_MCA_oob_tcp_if_include=lo")
if(MPROC_SANITIZE MATCHES "address")
  # Open MPI's own allocations at exit are not mproc's leaks. Its plugins are unloaded by then
  # and built without frame pointers: only the slow unwinder finds the Open MPI frame of each
  # stack that the suppressions match.
  list(APPEND mproc_mpi_environment
       "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/mpi/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0")
endif()
