// Dynamic dispatch of the q6bit kernels: foreach_target compiles
// kernels/dequant-inl.h once per Highway target, HWY_EXPORT builds the
// tables, and HWY_DYNAMIC_DISPATCH picks the best target this CPU runs.
// No global -march: each target's code carries its own target attributes.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dequant.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "kernels/dequant-inl.h"

#if HWY_ONCE
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {

HWY_EXPORT(DequantizeRowsT);
HWY_EXPORT(UnpackRowsT);
HWY_EXPORT(TargetNameT);

void DequantizeRows(const uint8_t* qweight, const int8_t* zero_point,
                    const uint16_t* scales_f16, size_t group_size,
                    size_t row_begin, size_t row_end, uint16_t* out_f16) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowsT)
  (qweight, zero_point, scales_f16, group_size, row_begin, row_end, out_f16);
}

void UnpackRows(const uint8_t* qweight, size_t group_size, size_t row_begin,
                size_t row_end, uint8_t* out_codes) {
  HWY_DYNAMIC_DISPATCH(UnpackRowsT)
  (qweight, group_size, row_begin, row_end, out_codes);
}

std::string ActiveTarget() { return HWY_DYNAMIC_DISPATCH(TargetNameT)(); }

std::vector<std::string> RunnableTargets() {
  std::vector<std::string> names;
  // Must run in this translation unit: it intersects with *our* HWY_TARGETS.
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    names.emplace_back(hwy::TargetName(target));
  }
  return names;
}

bool ForceTarget(const std::string& name) {
  if (name.empty()) {
    hwy::SetSupportedTargetsForTest(0);
    return true;
  }
  hwy::SetSupportedTargetsForTest(0);  // list every runnable target
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(target)) {
      hwy::SetSupportedTargetsForTest(target);
      return true;
    }
  }
  return false;
}

}  // namespace q6bit
#endif  // HWY_ONCE
