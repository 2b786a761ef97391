# Cross-compiles q6bit's kernels + GoogleTest for aarch64 Linux with Debian's
# g++-aarch64-linux-gnu against the arm64 multiarch packages (libhwy-dev:arm64,
# libgtest-dev:arm64, installed under /usr/lib/aarch64-linux-gnu), and runs
# test binaries (gtest_discover_tests) under qemu-aarch64. Used by
# ci/cross_aarch64.sh:
#   cmake -S . -B build-aarch64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=ci/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: packages are found under <prefix>/lib/aarch64-linux-gnu (e.g. the
# hwy and GTest CMake packages), never in the host's x86_64-linux-gnu dirs.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# No "-L /usr/aarch64-linux-gnu": that would pair the cross package's ld.so
# with the multiarch libc6:arm64 (a different glibc build, which libhwy1:arm64
# pulls in); the multiarch dynamic loader /lib/ld-linux-aarch64.so.1 and its
# libraries are consistent and found without a prefix.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
# pkg-config fallback of third_party/hwy.cmake: the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
