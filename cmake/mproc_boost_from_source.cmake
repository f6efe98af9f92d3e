# Boost for a cross build that has no Boost package: the headers of the build machine's Boost
# (MPROC_BOOST_INCLUDE_DIR, Debian's libboost1.81-dev) and Boost.Serialization compiled from its
# sources (MPROC_BOOST_SERIALIZATION_SOURCE: the libs/serialization/src folder of Debian's
# boost1.81 source package; .ci/boost-source fetches it). Defines Boost::headers and
# Boost::serialization, as find_package(Boost) would.
set(MPROC_BOOST_INCLUDE_DIR "/usr/include" CACHE PATH "Folder that holds the boost/ headers")

if(NOT EXISTS "${MPROC_BOOST_SERIALIZATION_SOURCE}/basic_archive.cpp")
  message(FATAL_ERROR "MPROC_BOOST_SERIALIZATION_SOURCE='${MPROC_BOOST_SERIALIZATION_SOURCE}' "
    "does not hold Boost.Serialization's sources; fetch them with .ci/boost-source <folder>")
endif()

# Only boost/ on the include path: all of /usr/include would put glibc's headers before
# MinGW's.
set(headers_dir "${PROJECT_BINARY_DIR}/boost-headers")
file(MAKE_DIRECTORY "${headers_dir}")
file(CREATE_LINK "${MPROC_BOOST_INCLUDE_DIR}/boost" "${headers_dir}/boost" SYMBOLIC)
# Boost.Process includes <Windows.h>; MinGW-w64 ships windows.h, and file names here are
# case-sensitive.
file(WRITE "${headers_dir}/Windows.h" "#include <windows.h>\n")

add_library(mproc_boost_headers INTERFACE)
target_include_directories(mproc_boost_headers SYSTEM INTERFACE "${headers_dir}")
add_library(Boost::headers ALIAS mproc_boost_headers)

# The narrow-character archives (what the binary archive needs), not the wide ones.
file(GLOB sources "${MPROC_BOOST_SERIALIZATION_SOURCE}/*.cpp")
list(FILTER sources EXCLUDE REGEX "w(i|o)archive|w(i|o)primitive|wgrammar")
add_library(mproc_boost_serialization STATIC ${sources})
target_link_libraries(mproc_boost_serialization PUBLIC mproc_boost_headers)
target_compile_features(mproc_boost_serialization PUBLIC cxx_std_20)
add_library(Boost::serialization ALIAS mproc_boost_serialization)
set(Boost_INCLUDE_DIRS "${headers_dir}")
