// GoogleTest suite of the q6bit kernels, run once per compiled Highway target
// against the scalar golden model (tests/cpp/golden.h). A target compiled in
// but not runnable on this CPU is reported as SKIPPED, never as passed.

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/aligned_allocator.h"
#include "hwy/targets.h"
#include "hwy/tests/hwy_gtest.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"
#include "tests/cpp/golden.h"

namespace {

using q6bit::PackedBytesPerGroup;

// Every target compiled into this build (HWY_TARGETS), best first.
std::vector<int64_t> CompiledTargets() {
  std::vector<int64_t> targets;
  for (int64_t bits = HWY_TARGETS; bits != 0; bits &= bits - 1) {
    targets.push_back(bits & ~(bits - 1));
  }
  return targets;
}

// hwy's per-target fixture, except that a target this CPU cannot run is
// skipped (hwy's own instantiation would silently leave it out).
class KernelTest : public hwy::TestWithParamTarget {
 protected:
  void SetUp() override {
    const int64_t target = GetParam();
    if ((hwy::SupportedTargets() & target) == 0) {
      GTEST_SKIP() << hwy::TargetName(target)
                   << " is compiled in but this CPU cannot run it";
    }
    hwy::SetSupportedTargetsForTest(target);
    ASSERT_EQ(q6bit::ActiveTarget(), hwy::TargetName(target));
  }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, KernelTest,
                         testing::ValuesIn(CompiledTargets()),
                         hwy::TestParamTargetName);

// Packs codes with the spec's layout (inverse of golden::Code).
std::vector<uint8_t> Pack(const std::vector<uint8_t>& codes) {
  std::vector<uint8_t> packed(codes.size() / 4 * 3);
  for (size_t t = 0; t < codes.size() / 4; ++t) {
    const uint32_t v = codes[4 * t] | codes[4 * t + 1] << 6 |
                       codes[4 * t + 2] << 12 | codes[4 * t + 3] << 18;
    packed[3 * t] = v & 0xFF;
    packed[3 * t + 1] = (v >> 8) & 0xFF;
    packed[3 * t + 2] = (v >> 16) & 0xFF;
  }
  return packed;
}

// Reports the first few mismatching output positions, as bit patterns.
template <typename T>
void ExpectSameBits(const std::vector<T>& expected, const T* actual,
                    const std::string& what) {
  size_t mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] != actual[i] && ++mismatches <= 5) {
      ADD_FAILURE() << what << ": index " << i << " expected 0x" << std::hex
                    << +expected[i] << " got 0x" << +actual[i] << std::dec;
    }
  }
  EXPECT_EQ(mismatches, 0u) << what;
}

// Five groups of codes 0..63 per scale, with zero points chosen so that the
// groups cover every reachable code - zero_point, -127..191, in order.
constexpr int8_t kZeroPoints[5] = {127, 63, -1, -65, -128};
constexpr size_t kExhaustiveGroup = 64;

struct ExhaustiveCase {
  std::vector<uint8_t> packed;  // rows * 48 bytes
  std::vector<int8_t> zero_points;
  std::vector<uint16_t> scales;
  std::vector<uint16_t> expected;
};

const ExhaustiveCase& Exhaustive() {
  static const ExhaustiveCase* cases = [] {
    auto* c = new ExhaustiveCase;
    std::vector<uint8_t> codes(kExhaustiveGroup);
    for (size_t i = 0; i < kExhaustiveGroup; ++i) codes[i] = i;
    const std::vector<uint8_t> group = Pack(codes);
    for (uint32_t scale = 0; scale <= 0xFFFF; ++scale) {
      if (((scale >> 10) & 31) == 31) continue;  // inf / NaN: not finite
      for (int8_t zp : kZeroPoints) {
        c->packed.insert(c->packed.end(), group.begin(), group.end());
        c->zero_points.push_back(zp);
        c->scales.push_back(scale);
        for (uint8_t code : codes) {
          c->expected.push_back(q6bit_golden::Dequantize(code, zp, scale));
        }
      }
    }
    return c;
  }();
  return *cases;
}

TEST_P(KernelTest, EveryDifferenceTimesEveryFiniteScale) {
  const ExhaustiveCase& c = Exhaustive();
  ASSERT_EQ(c.scales.size(), 63488u * 5);
  auto out = hwy::AllocateAligned<uint16_t>(c.expected.size());
  for (bool stream : {false, true}) {
    memset(out.get(), 0xAB, c.expected.size() * sizeof(uint16_t));
    q6bit::DequantizeRows(c.packed.data(), c.zero_points.data(), c.scales.data(),
                          kExhaustiveGroup, 0, c.scales.size(), out.get(), stream);
    ExpectSameBits(c.expected, out.get(), stream ? "exhaustive, streaming" : "exhaustive");
  }
}

TEST_P(KernelTest, NonFiniteScales) {
  std::vector<uint8_t> codes(8);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = i * 9;  // 0..63
  const std::vector<uint8_t> packed = Pack(codes);
  const int8_t zero_point[1] = {9};  // code 9 gives a zero difference
  for (uint16_t scale : {uint16_t{0x7C00}, uint16_t{0xFC00}, uint16_t{0x7E00}}) {
    uint16_t out[8];
    q6bit::DequantizeRows(packed.data(), zero_point, &scale, 8, 0, 1, out);
    for (size_t i = 0; i < 8; ++i) {
      const bool is_nan = (out[i] & 0x7C00) == 0x7C00 && (out[i] & 0x3FF);
      if (scale == 0x7E00 || codes[i] == 9) {  // NaN scale, or inf * 0
        EXPECT_TRUE(is_nan) << std::hex << scale << " " << out[i];
      } else {
        EXPECT_EQ(out[i], q6bit_golden::Dequantize(codes[i], 9, scale));
      }
    }
  }
}

// Random codes, zero points and finite scales (all exponents, so overflow to
// inf and subnormal results occur) for group sizes that leave every kind of
// tail, dequantized over split row ranges as threads would do.
TEST_P(KernelTest, RandomGroupsWithTails) {
  std::mt19937 rng(1234);
  for (size_t group : {4, 8, 12, 20, 36, 60, 64, 68, 100, 124, 128, 132, 192,
                       252, 256, 260, 1020, 1024}) {
    for (size_t rows : {1, 2, 3, 7, 33}) {
      std::vector<uint8_t> packed(rows * PackedBytesPerGroup(group));
      std::vector<int8_t> zero_points(rows);
      std::vector<uint16_t> scales(rows);
      for (auto& b : packed) b = rng();
      for (auto& z : zero_points) z = static_cast<int8_t>(rng());
      for (auto& s : scales) {
        do s = rng(); while (((s >> 10) & 31) == 31);
      }
      std::vector<uint16_t> expected(rows * group);
      std::vector<uint8_t> expected_codes(rows * group);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t i = 0; i < group; ++i) {
          const uint8_t code = q6bit_golden::CodeAt(
              packed.data() + r * PackedBytesPerGroup(group), i);
          expected_codes[r * group + i] = code;
          expected[r * group + i] =
              q6bit_golden::Dequantize(code, zero_points[r], scales[r]);
        }
      }
      const std::string what =
          "group " + std::to_string(group) + " rows " + std::to_string(rows);
      // Aligned output, so that streaming stores are used where allowed.
      auto out = hwy::AllocateAligned<uint16_t>(rows * group);
      for (bool stream : {false, true}) {
        for (size_t split : {size_t{0}, rows / 2, rows - 1}) {
          memset(out.get(), 0xAB, rows * group * sizeof(uint16_t));
          std::vector<uint8_t> codes(rows * group, 0xEE);
          for (auto range : {std::make_pair(size_t{0}, split),
                             std::make_pair(split, rows)}) {
            q6bit::DequantizeRows(packed.data(), zero_points.data(), scales.data(),
                                  group, range.first, range.second, out.get(), stream);
            q6bit::UnpackRows(packed.data(), group, range.first, range.second,
                              codes.data());
          }
          ExpectSameBits(expected, out.get(),
                         (stream ? "streaming dequantize " : "dequantize ") + what);
          ExpectSameBits(expected_codes, codes.data(), "unpack " + what);
        }
      }
    }
  }
}

// Places the packed rows right before an inaccessible page and the outputs
// right after a range: a kernel reading past its last packed byte crashes,
// one writing past its last row changes the sentinel.
TEST_P(KernelTest, StaysInsideItsRows) {
  const size_t page = sysconf(_SC_PAGESIZE);
  for (size_t group : {4, 64, 128, 132}) {
    const size_t rows = 5;
    const size_t bytes = rows * PackedBytesPerGroup(group);
    const size_t mapped = (bytes + page - 1) / page * page + page;
    auto* base = static_cast<uint8_t*>(mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(base, MAP_FAILED);
    ASSERT_EQ(mprotect(base + mapped - page, page, PROT_NONE), 0);
    uint8_t* packed = base + mapped - page - bytes;
    for (size_t i = 0; i < bytes; ++i) packed[i] = static_cast<uint8_t>(i * 37);
    const std::vector<int8_t> zero_points(rows, 3);
    const std::vector<uint16_t> scales(rows, 0x3C00);  // 1.0
    auto out_buffer = hwy::AllocateAligned<uint16_t>(rows * group + 64);
    uint16_t* out = out_buffer.get();
    const size_t out_size = rows * group + 64;
    for (size_t i = 0; i < out_size; ++i) out[i] = 0xBEEF;
    std::vector<uint8_t> codes(rows * group + 64, 0xEE);
    q6bit::DequantizeRows(packed, zero_points.data(), scales.data(), group, 2,
                          rows, out, /*stream=*/true);
    q6bit::UnpackRows(packed, group, 2, rows, codes.data());
    for (size_t i = 0; i < out_size; ++i) {
      const bool inside = i >= 2 * group && i < rows * group;
      if (!inside) {
        ASSERT_EQ(out[i], 0xBEEF) << "group " << group << " wrote index " << i;
        ASSERT_EQ(codes[i], 0xEE) << "group " << group << " wrote index " << i;
      } else {
        const uint8_t code = q6bit_golden::CodeAt(
            packed + i / group * PackedBytesPerGroup(group), i % group);
        ASSERT_EQ(codes[i], code) << i;
        ASSERT_EQ(out[i], q6bit_golden::Dequantize(code, 3, 0x3C00)) << i;
      }
    }
    munmap(base, mapped);
  }
}

TEST(Targets, ListAndForce) {
  const std::vector<std::string> runnable = q6bit::RunnableTargets();
  ASSERT_FALSE(runnable.empty());
  EXPECT_EQ(q6bit::ActiveTarget(), runnable.front());
  EXPECT_FALSE(q6bit::ForceTarget("NO_SUCH_TARGET"));
  EXPECT_EQ(q6bit::ActiveTarget(), runnable.front());
  EXPECT_TRUE(q6bit::ForceTarget(runnable.back()));
  EXPECT_EQ(q6bit::ActiveTarget(), runnable.back());
  EXPECT_FALSE(q6bit::ForceTarget("NO_SUCH_TARGET"));  // changes nothing
  EXPECT_EQ(q6bit::ActiveTarget(), runnable.back());
  EXPECT_TRUE(q6bit::ForceTarget(""));
  EXPECT_EQ(q6bit::ActiveTarget(), runnable.front());
}

}  // namespace
