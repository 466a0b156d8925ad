# kingpinConfig.cmake — find_package(kingpin) for a kingpin installed by capi/install.sh:
#   PREFIX/lib/cmake/kingpin/kingpinConfig.cmake (this file), PREFIX/include/kingpin.h(pp),
#   PREFIX/lib/libkingpin.so.0.1.0 (soname libkingpin.so.0) and PREFIX/lib/libkingpin.a.
#
# Imported targets:
#   kingpin::kingpin          the shared library, with include/ for kingpin.h and kingpin.hpp
#   kingpin::kingpin_static   the static library, with the system libraries it needs
# Variables: kingpin_FOUND, kingpin_INCLUDE_DIRS, kingpin_LIBRARIES (kingpin::kingpin), and
# kingpin_VERSION (set by find_package from kingpinConfigVersion.cmake).
#
# kingpin.hpp needs C++17; C programs need nothing more, so no compile feature is imposed.

include(CMakeFindDependencyMacro)
find_dependency(Threads)

# The prefix the package was installed under: three levels above lib/cmake/kingpin.
get_filename_component(_kingpin_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(_kingpin_shared "${_kingpin_prefix}/lib/libkingpin.so.0.1.0")
set(_kingpin_static "${_kingpin_prefix}/lib/libkingpin.a")
set(_kingpin_include "${_kingpin_prefix}/include")

foreach(_kingpin_file IN ITEMS "${_kingpin_include}/kingpin.h" "${_kingpin_shared}" "${_kingpin_static}")
  if(NOT EXISTS "${_kingpin_file}")
    set(kingpin_FOUND FALSE)
    set(kingpin_NOT_FOUND_MESSAGE
        "kingpin under ${_kingpin_prefix} is incomplete: ${_kingpin_file} is missing (install it again)")
    return()
  endif()
endforeach()

if(NOT TARGET kingpin::kingpin)
  add_library(kingpin::kingpin SHARED IMPORTED)
  set_target_properties(kingpin::kingpin PROPERTIES
    IMPORTED_LOCATION "${_kingpin_shared}"
    IMPORTED_SONAME "libkingpin.so.0"
    INTERFACE_INCLUDE_DIRECTORIES "${_kingpin_include}")
endif()

if(NOT TARGET kingpin::kingpin_static)
  add_library(kingpin::kingpin_static STATIC IMPORTED)
  set_target_properties(kingpin::kingpin_static PROPERTIES
    IMPORTED_LOCATION "${_kingpin_static}"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_kingpin_include}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;dl;m")
endif()

set(kingpin_FOUND TRUE)
set(kingpin_INCLUDE_DIRS "${_kingpin_include}")
set(kingpin_LIBRARIES kingpin::kingpin)

unset(_kingpin_file)
unset(_kingpin_include)
unset(_kingpin_shared)
unset(_kingpin_static)
unset(_kingpin_prefix)
