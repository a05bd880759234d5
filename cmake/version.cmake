# cmake/version.cmake - the version comes from include/gort.h, the one place
# it is written: GORT_VERSION_MAJOR/MINOR/PATCH there are what gort_version()
# returns, so the CMake project version, the shared library's VERSION and
# SOVERSION, gort.pc and the CMake package version file are all derived from
# them. Included before project(); sets GORT_VERSION ("MAJOR.MINOR.PATCH").

set(_gort_header "${CMAKE_CURRENT_LIST_DIR}/../include/gort.h")
file(STRINGS "${_gort_header}" _gort_version_lines
  REGEX "^#define[ \t]+GORT_VERSION_(MAJOR|MINOR|PATCH)[ \t]+[0-9]+[ \t]*$")
foreach(_part MAJOR MINOR PATCH)
  set(_gort_${_part} "")
  foreach(_line IN LISTS _gort_version_lines)
    if(_line MATCHES "^#define[ \t]+GORT_VERSION_${_part}[ \t]+([0-9]+)")
      if(NOT _gort_${_part} STREQUAL "")
        message(FATAL_ERROR "include/gort.h defines GORT_VERSION_${_part} twice")
      endif()
      set(_gort_${_part} "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  if(_gort_${_part} STREQUAL "")
    message(FATAL_ERROR "include/gort.h: no '#define GORT_VERSION_${_part} <number>'")
  endif()
endforeach()
set(GORT_VERSION "${_gort_MAJOR}.${_gort_MINOR}.${_gort_PATCH}")
# A version bump in the header re-runs the configure step.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_gort_header}")
unset(_gort_header)
unset(_gort_version_lines)
unset(_gort_MAJOR)
unset(_gort_MINOR)
unset(_gort_PATCH)
