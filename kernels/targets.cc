// Which Highway targets the kernels may use: the runnable ones, and forcing
// one of them for tests and benchmarks. Kept apart from kernels/dequant.cc,
// which only dispatches. Compiled with the same Highway target macros as
// dequant.cc (HWY_WANT_AVX3_DL, no -march), so HWY_TARGETS here is the set
// that dequant.cc compiled.
#include "hwy/targets.h"

#include <stdint.h>

#include <string>
#include <vector>

#include "hwy/highway.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {
namespace {

// Highway 1.0.3's SupportedTargets() stores the targets it detected in the
// dispatch state *before* it adds the vector-length-specific ones (SVE_256
// when SVE vectors are 256 bits, SVE2_128 when SVE2 vectors are 128 bits) and
// relies on HWY_DYNAMIC_DISPATCH's first call to store the final set (see
// Highway's hwy/targets.cc). Any later SupportedTargets() call thus leaves dispatch on
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
  // HWY_TARGETS: the targets kernels/dequant.cc compiled (same macros).
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
