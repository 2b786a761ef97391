# Cross-compiles q6bit's kernels + GoogleTest for ppc64el (POWER8+, little
# endian) with Debian's g++-powerpc64le-linux-gnu. Highway and GoogleTest for
# ppc64el are *not* installed through multiarch; ci/cross_ppc64el.sh unpacks
# Debian's ppc64el packages into a private prefix and passes
#   -DCMAKE_PREFIX_PATH=<prefix>/usr
# Test binaries run under qemu-ppc64le with the cross toolchain's own glibc.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ppc64le)
set(CMAKE_C_COMPILER powerpc64le-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER powerpc64le-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE powerpc64le-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-ppc64le -L /usr/powerpc64le-linux-gnu)
# Never let pkg-config hand out the host's x86 libhwy.
set(ENV{PKG_CONFIG_LIBDIR} /nonexistent)
