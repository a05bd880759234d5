# cmake/install.cmake - what `cmake --install` puts under the prefix
# (included from the top level when GORT_INSTALL is ON, the default when gort
# is the top-level project). With the GNUInstallDirs defaults:
#
#   lib/libgort.a                        static library
#   lib/libgort.so.MAJOR.MINOR.PATCH     shared library, SONAME libgort.so.MAJOR
#   lib/libgort.so.MAJOR, lib/libgort.so symlinks
#   include/gort.h                       the one public header
#   lib/pkgconfig/gort.pc                pkg-config (written at install time,
#                                        so `--prefix` and DESTDIR work)
#   lib/cmake/gort/gortConfig.cmake      find_package(gort): gort::gort,
#   lib/cmake/gort/gortConfigVersion.cmake    gort::gort_shared,
#   lib/cmake/gort/gortTargets*.cmake         gort::gort_static
#   share/man/man3/gort_*.3, man7/gort.7 the manual (man/), plus one .so page
#                                        per function a page documents
#
# Components: Runtime (the shared library's versioned file and its SONAME
# link) and Development (everything else), for packagers:
#   cmake --install build/release --component Runtime
#
# .ci/check-install installs the release build into a temporary prefix and
# builds the examples against it through both pkg-config and find_package.

include(CMakePackageConfigHelpers)

set(GORT_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/gort" CACHE STRING
  "Where gortConfig.cmake goes, relative to the prefix")
set(GORT_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig" CACHE STRING
  "Where gort.pc goes, relative to the prefix")

# ---- libraries and header

install(TARGETS gort_static gort_shared EXPORT gortTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime
    NAMELINK_COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)
install(FILES include/gort.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)

# ---- CMake package: find_package(gort [0.1] REQUIRED)

# The targets file defines gort::gort_static and gort::gort_shared (with
# gort.h's directory and Threads::Threads in their interfaces);
# gortConfig.cmake adds gort::gort on top.
install(EXPORT gortTargets NAMESPACE gort:: FILE gortTargets.cmake
  DESTINATION ${GORT_INSTALL_CMAKEDIR} COMPONENT Development)
configure_package_config_file(cmake/gortConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/gortConfig.cmake
  INSTALL_DESTINATION ${GORT_INSTALL_CMAKEDIR} NO_SET_AND_CHECK_MACRO)
# 0.x: a new minor version may change the ABI (see src/gort.map), so
# find_package(gort 0.1) accepts 0.1.z only.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/gortConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gortConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/gortConfigVersion.cmake
  DESTINATION ${GORT_INSTALL_CMAKEDIR} COMPONENT Development)

# ---- pkg-config: cc $(pkg-config --cflags --libs gort)

# Written by the install step itself, so the prefix in it is the one
# installed to (`cmake --install --prefix P` overrides the configured
# CMAKE_INSTALL_PREFIX) and DESTDIR is not part of it. Absolute LIBDIR or
# INCLUDEDIR values are kept as they are.
foreach(_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_dir}}")
    set(_gort_pc_${_dir} "${CMAKE_INSTALL_${_dir}}")
  else()
    set(_gort_pc_${_dir} "\${prefix}/${CMAKE_INSTALL_${_dir}}")
  endif()
endforeach()
install(CODE "
set(GORT_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
set(GORT_PC_LIBDIR [[${_gort_pc_LIBDIR}]])
set(GORT_PC_INCLUDEDIR [[${_gort_pc_INCLUDEDIR}]])
set(GORT_PC_VERSION [[${PROJECT_VERSION}]])
set(GORT_PC_LIBS_PRIVATE [[${CMAKE_THREAD_LIBS_INIT}]])
configure_file([[${CMAKE_CURRENT_SOURCE_DIR}/cmake/gort.pc.in]]
  [[${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/gort.pc]] @ONLY)
" COMPONENT Development)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/gort.pc
  DESTINATION ${GORT_INSTALL_PKGCONFIGDIR} COMPONENT Development)

# ---- man pages

# man/*.3 and man/*.7 are written by hand in troff. A page documents every
# function named in its NAME section ("gort_chan_make, gort_chan_send, ...
# \- ..."); each of those names other than the page's own gets a one-line
# ".so man3/<page>.3" page, so `man 3 gort_chan_send` finds gort_chan_make(3).
file(GLOB _gort_man_pages CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/man/*.3 ${CMAKE_CURRENT_SOURCE_DIR}/man/*.7)
set(_gort_man_links ${CMAKE_CURRENT_BINARY_DIR}/man-links)
file(REMOVE_RECURSE ${_gort_man_links})
set(_gort_man_seen "")
foreach(_page IN LISTS _gort_man_pages)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_page})
  get_filename_component(_name ${_page} NAME_WE)
  get_filename_component(_ext ${_page} LAST_EXT)
  string(SUBSTRING "${_ext}" 1 -1 _sec)
  install(FILES ${_page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_sec} COMPONENT Development)
  file(STRINGS ${_page} _lines)
  set(_in_name FALSE)
  set(_names "")
  foreach(_line IN LISTS _lines)
    if(_line MATCHES "^\\.SH")
      if(_in_name)
        break()
      endif()
      if(_line MATCHES "^\\.SH +\"?NAME\"?$")
        set(_in_name TRUE)
      endif()
    elseif(_in_name)
      # Only the names before "\-" (the one-line description follows it).
      string(REGEX REPLACE "\\\\-.*" "" _line "${_line}")
      string(REGEX MATCHALL "gort_[a-z0-9_]+" _found "${_line}")
      list(APPEND _names ${_found})
    endif()
  endforeach()
  foreach(_alias IN LISTS _names)
    if(_alias IN_LIST _gort_man_seen)
      message(FATAL_ERROR "man/: ${_alias} is in the NAME section of two pages")
    endif()
    list(APPEND _gort_man_seen ${_alias})
    if(NOT _alias STREQUAL _name AND NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/man/${_alias}.${_sec})
      file(WRITE ${_gort_man_links}/man${_sec}/${_alias}.${_sec} ".so man${_sec}/${_name}.${_sec}\n")
    endif()
  endforeach()
endforeach()
if(EXISTS ${_gort_man_links})
  install(DIRECTORY ${_gort_man_links}/ DESTINATION ${CMAKE_INSTALL_MANDIR}
    COMPONENT Development)
endif()
