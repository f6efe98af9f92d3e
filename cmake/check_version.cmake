# The version is set once, in CMakeLists.txt's project(): every other place that states it must
# agree. Inputs: VERSION (the project's), SOURCE_DIR.
file(READ "${SOURCE_DIR}/vcpkg.json" manifest)
string(JSON vcpkg_version GET "${manifest}" version)
if(NOT vcpkg_version STREQUAL VERSION)
  message(FATAL_ERROR "vcpkg.json says version ${vcpkg_version}, CMakeLists.txt ${VERSION}: "
                      "set vcpkg.json's \"version\" to ${VERSION}")
endif()
# The changelog's newest release is this version.
file(STRINGS "${SOURCE_DIR}/CHANGELOG.md" releases REGEX "^## \\[[0-9]")
list(GET releases 0 newest)
if(NOT newest MATCHES "^## \\[${VERSION}\\] - [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$")
  message(FATAL_ERROR "CHANGELOG.md's newest release is '${newest}', CMakeLists.txt says "
                      "${VERSION}: add a '## [${VERSION}] - <date>' section above it")
endif()
message(STATUS "version ${VERSION} everywhere")
