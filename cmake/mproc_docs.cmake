# The `docs` target: the API reference from the public headers' /// comments, with Doxygen
# (Debian: doxygen). Any Doxygen warning (an undocumented public name, a broken reference)
# fails the target.
find_package(Doxygen REQUIRED)
file(GLOB detail_headers ${PROJECT_SOURCE_DIR}/include/mproc/detail/*.hpp)
list(FILTER detail_headers EXCLUDE REGEX "encoded_pool\\.hpp$")  # the pools' shared surface
list(JOIN detail_headers " " DETAIL_HEADERS)
set(DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
add_custom_target(docs
  COMMAND ${CMAKE_COMMAND} -E make_directory ${DOCS_OUTPUT}
  COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/Doxyfile
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "API reference: ${DOCS_OUTPUT}/html/index.html"
  VERBATIM)
