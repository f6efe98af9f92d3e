# The version is set once, in CMakeLists.txt's project(): every other place that states it must
# agree. Inputs: VERSION (the project's), SOURCE_DIR.
file(READ "${SOURCE_DIR}/vcpkg.json" manifest)
string(JSON vcpkg_version GET "${manifest}" version)
if(NOT vcpkg_version STREQUAL VERSION)
  message(FATAL_ERROR "vcpkg.json says version ${vcpkg_version}, CMakeLists.txt ${VERSION}: "
                      "set vcpkg.json's \"version\" to ${VERSION}")
endif()
message(STATUS "version ${VERSION} everywhere")
