// Dynamic dispatch of the packed matmul kernel (kernels/linear-inl.h), as
// kernels/dequant.cc does for dequantization: foreach_target compiles it for
// every Highway target with the same macros, so kernels/targets.cc's
// forcing applies to both.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/linear.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/linear-inl.h"

#if HWY_ONCE
#if defined(__linux__)
#include <sys/syscall.h>  // arch_prctl, for AMX
#include <unistd.h>
#endif

#include "kernels/q6bit_kernels.h"

namespace q6bit {

HWY_EXPORT(LinearRowsT);
HWY_EXPORT(UsesCpuExtensionsT);

namespace {

bool allowed[4] = {true, true, true, true};

#if HWY_ARCH_X86
// Linux lends the AMX tile registers to a process that asks (5.16 and
// later); without that, the first tile instruction faults.
bool AmxGranted() {
#if defined(__linux__)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

bool CpuHas(CpuExtension extension) {
#if HWY_ARCH_X86
  static const bool bf16 = __builtin_cpu_supports("avx512bf16");
  static const bool fp16 = __builtin_cpu_supports("avx512fp16");
  static const bool amx =
      __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") && AmxGranted();
  switch (extension) {
    case CpuExtension::kFP16Tables:
      return bf16 && fp16;
    case CpuExtension::kBF16Dot:
    case CpuExtension::kBF16Tables:
      return bf16;
    case CpuExtension::kAmx:
      return amx;
  }
  return false;
#else
  (void)extension;
  return false;
#endif
}

}  // namespace

void AllowCpuExtension(CpuExtension extension, bool allow) {
  allowed[static_cast<int>(extension)] = allow;
}

bool CpuExtensionUsable(CpuExtension extension) {
  return allowed[static_cast<int>(extension)] && CpuHas(extension);
}

size_t BF16DotMinRows() {
#if HWY_ARCH_X86
  static const bool amd = __builtin_cpu_is("amd");
  return amd ? 1 : 4;
#else
  return 4;
#endif
}

bool LinearUsesTables() { return HWY_DYNAMIC_DISPATCH(UsesCpuExtensionsT)(); }

bool CpuExtensionInUse(CpuExtension extension) {
  return CpuExtensionUsable(extension) && LinearUsesTables();
}

void LinearRows(const float* x, size_t m, size_t k, const uint8_t* qweight,
                const int8_t* zero_point, const uint16_t* scales_f16, size_t group_size,
                OutputType weight_type, size_t row_begin, size_t row_end, float* y, size_t ldy) {
  HWY_DYNAMIC_DISPATCH(LinearRowsT)
  (x, m, k, qweight, zero_point, scales_f16, group_size, weight_type, row_begin, row_end, y, ldy);
}

}  // namespace q6bit
#endif  // HWY_ONCE
