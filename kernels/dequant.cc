// Dynamic dispatch of the q6bit kernels, nothing else: foreach_target
// compiles kernels/dequant_groups-inl.h (with kernels/dequant-inl.h) once
// per Highway target, HWY_EXPORT builds the tables, and HWY_DYNAMIC_DISPATCH
// picks the best target this CPU runs (or the one kernels/targets.cc
// forced). No global -march: each target's code carries its own target
// attributes.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dequant.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/dequant_groups-inl.h"

#if HWY_ONCE
#include <string>

#include "kernels/q6bit_kernels.h"

namespace q6bit {

HWY_EXPORT(DequantizeGroupsT);
HWY_EXPORT(UnpackGroupsT);
HWY_EXPORT(TargetNameT);

void DequantizeGroups(const uint8_t* qweight, const int8_t* zero_point, const uint16_t* scales_f16,
                      size_t group_size, size_t group_begin, size_t group_end, void* out,
                      OutputType type, bool stream) {
  HWY_DYNAMIC_DISPATCH(DequantizeGroupsT)
  (qweight, zero_point, scales_f16, group_size, group_begin, group_end, out, type, stream);
}

void UnpackGroups(const uint8_t* qweight, size_t group_size, size_t group_begin, size_t group_end,
                  uint8_t* out_codes) {
  HWY_DYNAMIC_DISPATCH(UnpackGroupsT)
  (qweight, group_size, group_begin, group_end, out_codes);
}

std::string ActiveTarget() { return HWY_DYNAMIC_DISPATCH(TargetNameT)(); }

}  // namespace q6bit
#endif  // HWY_ONCE
