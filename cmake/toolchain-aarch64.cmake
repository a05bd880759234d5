# Cross toolchain for aarch64 Linux with Debian's cross packages:
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
# The tests run under qemu-user: GORT_TEST_LAUNCHER (prefixed to every test
# command by tests/CMakeLists.txt) and CMAKE_CROSSCOMPILING_EMULATOR (used by
# try_run and by add_test commands that name a target) are both set here.
#
# Use it through the preset: cmake --workflow --preset aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(GORT_CROSS_TRIPLE aarch64-linux-gnu)
set(GORT_CROSS_SYSROOT /usr/${GORT_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${GORT_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${GORT_CROSS_TRIPLE}-gcc)
# Only the compiler's own target libraries and headers, never the host's.
set(CMAKE_FIND_ROOT_PATH ${GORT_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L: where qemu finds the aarch64 dynamic loader and libc.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-${CMAKE_SYSTEM_PROCESSOR} -L ${GORT_CROSS_SYSROOT})
set(GORT_TEST_LAUNCHER "qemu-aarch64;-L;${GORT_CROSS_SYSROOT}"
    CACHE STRING "Command that runs each test binary (e.g. valgrind or qemu-aarch64)")
