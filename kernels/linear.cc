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
#include "kernels/q6bit_kernels.h"

namespace q6bit {

HWY_EXPORT(LinearRowsT);

namespace {
bool native_tables_allowed = true;
}  // namespace

bool NativeTablesAllowed() { return native_tables_allowed; }

void SetNativeTables(bool allowed) { native_tables_allowed = allowed; }

bool NativeTablesInUse() {
#if HWY_ARCH_X86
  return native_tables_allowed && ActiveTarget() == "AVX3_DL" &&
         __builtin_cpu_supports("avx512fp16") && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

void LinearRows(const float* x, size_t m, size_t k, const uint8_t* qweight,
                const int8_t* zero_point, const uint16_t* scales_f16, size_t group_size,
                OutputType weight_type, size_t row_begin, size_t row_end, float* y, size_t ldy) {
  HWY_DYNAMIC_DISPATCH(LinearRowsT)
  (x, m, k, qweight, zero_point, scales_f16, group_size, weight_type, row_begin, row_end, y, ldy);
}

}  // namespace q6bit
#endif  // HWY_ONCE
