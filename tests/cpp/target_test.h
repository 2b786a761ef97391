// The per-target GoogleTest fixture shared by the kernel suites: each test
// runs once per compiled Highway target, and a target compiled in but not
// runnable on this CPU is reported as SKIPPED, never as passed.
#ifndef Q6BIT_TESTS_CPP_TARGET_TEST_H_
#define Q6BIT_TESTS_CPP_TARGET_TEST_H_

#include <stdint.h>

#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit_test {

// Every target compiled into this build (HWY_TARGETS), best first.
inline std::vector<int64_t> CompiledTargets() {
  std::vector<int64_t> targets;
  for (int64_t bits = HWY_TARGETS; bits != 0; bits &= bits - 1) {
    targets.push_back(bits & ~(bits - 1));
  }
  return targets;
}

// hwy's per-target fixture, except that a target this CPU cannot run is
// skipped (hwy's own instantiation would silently leave it out).
class TargetTest : public hwy::TestWithParamTarget {
 protected:
  void SetUp() override {
    const int64_t target = GetParam();
    if ((hwy::SupportedTargets() & target) == 0) {
      GTEST_SKIP() << hwy::TargetName(target) << " is compiled in but this CPU cannot run it";
    }
    hwy::SetSupportedTargetsForTest(target);
    ASSERT_EQ(q6bit::ActiveTarget(), hwy::TargetName(target));
  }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

}  // namespace q6bit_test

#endif  // Q6BIT_TESTS_CPP_TARGET_TEST_H_
