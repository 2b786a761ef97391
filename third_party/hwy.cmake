# Locates Google Highway (Debian: libhwy-dev, 1.0.3 today) and defines the
# imported target q6bit::hwy. Nothing is vendored: see third_party/README.md.
find_package(hwy CONFIG QUIET)
if(TARGET hwy::hwy)
  add_library(q6bit::hwy ALIAS hwy::hwy)
  message(STATUS "q6bit: Highway ${hwy_VERSION} from its CMake package")
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(HWY REQUIRED IMPORTED_TARGET libhwy)
  add_library(q6bit::hwy ALIAS PkgConfig::HWY)
  message(STATUS "q6bit: Highway ${HWY_VERSION} from pkg-config")
endif()
