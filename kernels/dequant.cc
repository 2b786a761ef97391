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
                    size_t row_begin, size_t row_end, uint16_t* out_f16,
                    bool stream) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowsT)
  (qweight, zero_point, scales_f16, group_size, row_begin, row_end, out_f16, stream);
}

void UnpackRows(const uint8_t* qweight, size_t group_size, size_t row_begin,
                size_t row_end, uint8_t* out_codes) {
  HWY_DYNAMIC_DISPATCH(UnpackRowsT)
  (qweight, group_size, row_begin, row_end, out_codes);
}

std::string ActiveTarget() { return HWY_DYNAMIC_DISPATCH(TargetNameT)(); }

namespace {

// Highway 1.0.3's SupportedTargets() stores the targets it detected in the
// dispatch state *before* it adds the vector-length-specific ones (SVE_256
// when SVE vectors are 256 bits, SVE2_128 when SVE2 vectors are 128 bits) and
// relies on HWY_DYNAMIC_DISPATCH's first call to store the final set (see its
// targets.cc). Any later SupportedTargets() call thus leaves dispatch on
// SVE/SVE2 while SVE_256 or SVE2_128 is the best target (seen under
// qemu-aarch64 with 128- and 256-bit SVE; real CPUs: Neoverse V1, N2, V2).
// Every call here goes through this wrapper, which stores the final set
// again, exactly as that first dispatch does; elsewhere (x86, NEON-only,
// other vector lengths) it stores the set already stored.
int64_t SupportedTargets() {
  const int64_t targets = hwy::SupportedTargets();
  hwy::GetChosenTarget().Update(targets);
  return targets;
}

// hwy::SupportedAndGeneratedTargets() (our HWY_TARGETS), via the wrapper.
std::vector<int64_t> SupportedAndGeneratedTargets() {
  std::vector<int64_t> targets;
  for (int64_t bits = SupportedTargets() & HWY_TARGETS; bits != 0; bits &= bits - 1) {
    targets.push_back(bits & ~(bits - 1));
  }
  return targets;
}

}  // namespace

std::vector<std::string> RunnableTargets() {
  std::vector<std::string> names;
  // Must run in this translation unit: it intersects with *our* HWY_TARGETS.
  for (int64_t target : SupportedAndGeneratedTargets()) {
    names.emplace_back(hwy::TargetName(target));
  }
  return names;
}

bool ForceTarget(const std::string& name) {
  // Look the name up among all runnable targets, with no earlier mock in
  // the way; an unknown name restores the mock that was there.
  const int64_t before = SupportedTargets();
  hwy::SetSupportedTargetsForTest(0);
  if (name.empty()) {
    SupportedTargets();
    return true;
  }
  for (int64_t target : SupportedAndGeneratedTargets()) {
    if (name == hwy::TargetName(target)) {
      hwy::SetSupportedTargetsForTest(target);
      SupportedTargets();
      return true;
    }
  }
  if (before != SupportedTargets()) {
    hwy::SetSupportedTargetsForTest(before);
    SupportedTargets();
  }
  return false;
}

}  // namespace q6bit
#endif  // HWY_ONCE
