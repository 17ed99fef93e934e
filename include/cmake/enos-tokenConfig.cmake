# CMake package of enos-token, installed by `cargo cinstall` into
# <prefix>/share/enos-token/cmake/. Use:
#
#   find_package(enos-token CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE enos-token::enos-token)
#
# with CMAKE_PREFIX_PATH set to the install prefix when it is not a system one.
# The imported target carries the include directory (#include "enos_token.h"
# or "enos_token.hpp"), and the library: the shared one when installed (CMake
# then builds programs with an rpath to it), else the static one with the
# system libraries it needs.

get_filename_component(_enos_token_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

find_path(ENOS_TOKEN_INCLUDE_DIR enos_token.h
  PATHS "${_enos_token_prefix}/include/enos-token" NO_DEFAULT_PATH)
find_library(ENOS_TOKEN_LIBRARY NAMES enos_token
  PATHS "${_enos_token_prefix}/lib" "${_enos_token_prefix}/lib64"
        "${_enos_token_prefix}/lib/${CMAKE_LIBRARY_ARCHITECTURE}"
  NO_DEFAULT_PATH)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(enos-token
  REQUIRED_VARS ENOS_TOKEN_LIBRARY ENOS_TOKEN_INCLUDE_DIR
  VERSION_VAR enos-token_VERSION)

if(enos-token_FOUND AND NOT TARGET enos-token::enos-token)
  add_library(enos-token::enos-token UNKNOWN IMPORTED)
  set_target_properties(enos-token::enos-token PROPERTIES
    IMPORTED_LOCATION "${ENOS_TOKEN_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${ENOS_TOKEN_INCLUDE_DIR}")
  if(ENOS_TOKEN_LIBRARY MATCHES "\\.a$")
    # What the Rust standard library needs (rustc --print native-static-libs).
    set_property(TARGET enos-token::enos-token PROPERTY
      INTERFACE_LINK_LIBRARIES gcc_s util rt pthread m dl c)
  endif()
endif()
unset(_enos_token_prefix)
