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
#include "tests/cpp/target_test.h"

namespace {

using q6bit::PackedBytesPerGroup;

class KernelTest : public q6bit_test::TargetTest {};

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, KernelTest,
                         testing::ValuesIn(q6bit_test::CompiledTargets()),
                         hwy::TestParamTargetName);

// Packs codes with the spec's layout (inverse of golden::Code).
std::vector<uint8_t> Pack(const std::vector<uint8_t>& codes) {
  std::vector<uint8_t> packed(codes.size() / 4 * 3);
  for (size_t t = 0; t < codes.size() / 4; ++t) {
    const uint32_t v =
        codes[4 * t] | codes[4 * t + 1] << 6 | codes[4 * t + 2] << 12 | codes[4 * t + 3] << 18;
    packed[3 * t] = v & 0xFF;
    packed[3 * t + 1] = (v >> 8) & 0xFF;
    packed[3 * t + 2] = (v >> 16) & 0xFF;
  }
  return packed;
}

// Reports the first few mismatching output positions, as bit patterns.
template <typename T>
void ExpectSameBits(const std::vector<T>& expected, const T* actual, const std::string& what) {
  size_t mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] != actual[i] && ++mismatches <= 5) {
      ADD_FAILURE() << what << ": index " << i << " expected 0x" << std::hex << +expected[i]
                    << " got 0x" << +actual[i] << std::dec;
    }
  }
  EXPECT_EQ(mismatches, 0u) << what;
}

using q6bit::OutputType;
constexpr OutputType kOutputTypes[] = {OutputType::kF16, OutputType::kBF16, OutputType::kF32};

std::string TypeName(OutputType type) {
  switch (type) {
    case OutputType::kF16:
      return "f16";
    case OutputType::kBF16:
      return "bf16";
    case OutputType::kF32:
      return "f32";
  }
  return "?";
}

// Expected output bits for the reference's fp16 result bits `h`, per type.
uint32_t ExpectedBits(OutputType type, uint16_t h) {
  switch (type) {
    case OutputType::kF16:
      return h;
    case OutputType::kBF16:
      return q6bit_golden::F16ToBF16(h);
    case OutputType::kF32:
      return q6bit_golden::F16ToF32Bits(h);
  }
  return 0;
}

// Bits of output element i of a `type` buffer.
uint32_t OutputBitsAt(const void* out, OutputType type, size_t i) {
  if (type == OutputType::kF32) {
    uint32_t bits;
    memcpy(&bits, static_cast<const uint8_t*>(out) + 4 * i, sizeof(bits));
    return bits;
  }
  return static_cast<const uint16_t*>(out)[i];
}

// Compares a `type` output with the expected fp16 results converted to it,
// reporting the first few mismatches as bit patterns.
void ExpectOutput(OutputType type, const std::vector<uint16_t>& expected_f16, const void* out,
                  const std::string& what) {
  size_t mismatches = 0;
  for (size_t i = 0; i < expected_f16.size(); ++i) {
    const uint32_t expected = ExpectedBits(type, expected_f16[i]);
    const uint32_t actual = OutputBitsAt(out, type, i);
    if (expected != actual && ++mismatches <= 5) {
      ADD_FAILURE() << what << " (" << TypeName(type) << "): index " << i << " expected 0x"
                    << std::hex << expected << " got 0x" << actual << std::dec << " (fp16 result 0x"
                    << std::hex << expected_f16[i] << std::dec << ")";
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << " (" << TypeName(type) << ")";
}

// Five groups of codes 0..63 per scale, with zero points chosen so that the
// groups cover every reachable code - zero_point, -127..191, in order.
constexpr int8_t kZeroPoints[5] = {127, 63, -1, -65, -128};
constexpr size_t kExhaustiveGroup = 64;

struct ExhaustiveCase {
  std::vector<uint8_t> packed;  // groups * 48 bytes
  std::vector<int8_t> zero_points;
  std::vector<uint16_t> scales;
  std::vector<uint16_t> expected;  // fp16 bits
};

// Every fp16 scale that is finite (finite == true) or not, times the five
// zero points, as groups of the codes 0..63.
ExhaustiveCase MakeExhaustive(bool finite) {
  ExhaustiveCase c;
  std::vector<uint8_t> codes(kExhaustiveGroup);
  for (size_t i = 0; i < kExhaustiveGroup; ++i) codes[i] = i;
  const std::vector<uint8_t> group = Pack(codes);
  for (uint32_t scale = 0; scale <= 0xFFFF; ++scale) {
    if ((((scale >> 10) & 31) != 31) != finite) continue;
    for (int8_t zp : kZeroPoints) {
      c.packed.insert(c.packed.end(), group.begin(), group.end());
      c.zero_points.push_back(zp);
      c.scales.push_back(scale);
      for (uint8_t code : codes) {
        c.expected.push_back(q6bit_golden::Dequantize(code, zp, scale));
      }
    }
  }
  return c;
}

const ExhaustiveCase& Exhaustive() {
  static const ExhaustiveCase* cases = new ExhaustiveCase(MakeExhaustive(true));
  return *cases;
}

// All groups of `c` dequantized into every output type, with and without
// streaming stores, against the golden model.
void ExpectExhaustive(const ExhaustiveCase& c, const std::string& what) {
  auto out = hwy::AllocateAligned<uint32_t>(c.expected.size());  // room for f32
  for (OutputType type : kOutputTypes) {
    for (bool stream : {false, true}) {
      memset(out.get(), 0xAB, c.expected.size() * sizeof(uint32_t));
      q6bit::DequantizeGroups(c.packed.data(), c.zero_points.data(), c.scales.data(),
                              kExhaustiveGroup, 0, c.scales.size(), out.get(), type, stream);
      ExpectOutput(type, c.expected, out.get(), stream ? what + ", streaming" : what);
    }
  }
}

TEST_P(KernelTest, EveryDifferenceTimesEveryFiniteScale) {
  const ExhaustiveCase& c = Exhaustive();
  ASSERT_EQ(c.scales.size(), 63488u * 5);
  ExpectExhaustive(c, "exhaustive");
}

// inf and NaN scales: the reference keeps a NaN scale's sign and payload
// (made quiet), and inf * 0 is the CPU's default NaN; bf16 makes every NaN
// 0x7FC0. Exact bits on every target, incl. the software conversions.
TEST_P(KernelTest, EveryDifferenceTimesEveryNonFiniteScale) {
  static const ExhaustiveCase* c = new ExhaustiveCase(MakeExhaustive(false));
  ASSERT_EQ(c->scales.size(), 2048u * 5);
  ExpectExhaustive(*c, "non-finite scales");
}

// The same with AVX512_BF16's table builder forbidden: on AVX3_DL the
// dequantizer then builds every bf16 group's table by DequantizeCodes (the
// one path CPUs with VBMI but not AVX512_BF16, Ice Lake, take). Elsewhere
// the forbidding changes nothing and the test repeats the one above.
TEST_P(KernelTest, EveryDifferenceTimesEveryScaleWithoutBF16Tables) {
  q6bit::AllowCpuExtension(q6bit::CpuExtension::kBF16Tables, false);
  ExpectExhaustive(Exhaustive(), "exhaustive, without bf16-tables");
  static const ExhaustiveCase* c = new ExhaustiveCase(MakeExhaustive(false));
  ExpectExhaustive(*c, "non-finite scales, without bf16-tables");
  q6bit::AllowCpuExtension(q6bit::CpuExtension::kBF16Tables, true);
}

TEST_P(KernelTest, NonFiniteScales) {
  std::vector<uint8_t> codes(8);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = i * 9;  // 0..63
  const std::vector<uint8_t> packed = Pack(codes);
  const int8_t zero_point[1] = {9};  // code 9 gives a zero difference
  for (uint16_t scale : {uint16_t{0x7C00}, uint16_t{0xFC00}, uint16_t{0x7E00}}) {
    uint16_t out[8];
    q6bit::DequantizeGroups(packed.data(), zero_point, &scale, 8, 0, 1, out);
    for (size_t i = 0; i < 8; ++i) {
      const bool is_nan = (out[i] & 0x7C00) == 0x7C00 && (out[i] & 0x3FF);
      if (scale == 0x7E00 || codes[i] == 9) {  // NaN scale, or inf * 0
        EXPECT_TRUE(is_nan) << std::hex << scale << " " << out[i];
        EXPECT_EQ(out[i], q6bit_golden::Dequantize(codes[i], 9, scale));
      } else {
        EXPECT_EQ(out[i], q6bit_golden::Dequantize(codes[i], 9, scale));
      }
    }
  }
}

// Random codes, zero points and finite scales (all exponents, so overflow to
// inf and subnormal results occur) for group sizes that leave every kind of
// tail, dequantized into every output type over split group ranges as
// threads would do.
TEST_P(KernelTest, RandomGroupsWithTails) {
  std::mt19937 rng(1234);
  for (size_t group :
       {4, 8, 12, 20, 36, 60, 64, 68, 100, 124, 128, 132, 192, 252, 256, 260, 1020, 1024}) {
    for (size_t groups : {1, 2, 3, 7, 33}) {
      std::vector<uint8_t> packed(groups * PackedBytesPerGroup(group));
      std::vector<int8_t> zero_points(groups);
      std::vector<uint16_t> scales(groups);
      for (auto& b : packed) b = rng();
      for (auto& z : zero_points) z = static_cast<int8_t>(rng());
      for (auto& s : scales) {
        do s = rng();
        while (((s >> 10) & 31) == 31);
      }
      std::vector<uint16_t> expected(groups * group);
      std::vector<uint8_t> expected_codes(groups * group);
      for (size_t g = 0; g < groups; ++g) {
        for (size_t i = 0; i < group; ++i) {
          const uint8_t code =
              q6bit_golden::CodeAt(packed.data() + g * PackedBytesPerGroup(group), i);
          expected_codes[g * group + i] = code;
          expected[g * group + i] = q6bit_golden::Dequantize(code, zero_points[g], scales[g]);
        }
      }
      const std::string what =
          "group " + std::to_string(group) + " groups " + std::to_string(groups);
      // Aligned output, so that streaming stores are used where allowed.
      auto out = hwy::AllocateAligned<uint32_t>(groups * group);  // room for f32
      for (OutputType type : kOutputTypes) {
        for (bool stream : {false, true}) {
          for (size_t split : {size_t{0}, groups / 2, groups - 1}) {
            memset(out.get(), 0xAB, groups * group * sizeof(uint32_t));
            std::vector<uint8_t> codes(groups * group, 0xEE);
            for (auto range : {std::make_pair(size_t{0}, split), std::make_pair(split, groups)}) {
              q6bit::DequantizeGroups(packed.data(), zero_points.data(), scales.data(), group,
                                      range.first, range.second, out.get(), type, stream);
              q6bit::UnpackGroups(packed.data(), group, range.first, range.second, codes.data());
            }
            ExpectOutput(type, expected, out.get(),
                         (stream ? "streaming dequantize " : "dequantize ") + what);
            ExpectSameBits(expected_codes, codes.data(), "unpack " + what);
          }
        }
      }
    }
  }
}

// Places the packed groups right before an inaccessible page and the outputs
// right after a range: a kernel reading past its last packed byte crashes,
// one writing past its last group changes the sentinel.
TEST_P(KernelTest, StaysInsideItsGroups) {
  const size_t page = sysconf(_SC_PAGESIZE);
  for (size_t group : {4, 64, 128, 132}) {
    const size_t groups = 5;
    const size_t bytes = groups * PackedBytesPerGroup(group);
    const size_t mapped = (bytes + page - 1) / page * page + page;
    auto* base = static_cast<uint8_t*>(
        mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(base, MAP_FAILED);
    ASSERT_EQ(mprotect(base + mapped - page, page, PROT_NONE), 0);
    uint8_t* packed = base + mapped - page - bytes;
    for (size_t i = 0; i < bytes; ++i) packed[i] = static_cast<uint8_t>(i * 37);
    const std::vector<int8_t> zero_points(groups, 3);
    const std::vector<uint16_t> scales(groups, 0x3C00);  // 1.0
    const size_t out_size = groups * group + 64;
    auto out_buffer = hwy::AllocateAligned<uint32_t>(out_size);  // room for f32
    for (OutputType type : kOutputTypes) {
      const size_t width = q6bit::OutputBytes(type);
      auto* out_bytes = reinterpret_cast<uint8_t*>(out_buffer.get());
      memset(out_bytes, 0xBE, out_size * sizeof(uint32_t));
      q6bit::DequantizeGroups(packed, zero_points.data(), scales.data(), group, 2, groups,
                              out_buffer.get(), type, /*stream=*/true);
      for (size_t b = 0; b < out_size * sizeof(uint32_t); ++b) {
        if (b < 2 * group * width || b >= groups * group * width) {
          ASSERT_EQ(out_bytes[b], 0xBE)
              << TypeName(type) << " group " << group << " wrote byte " << b;
        }
      }
      for (size_t i = 2 * group; i < groups * group; ++i) {
        const uint8_t code =
            q6bit_golden::CodeAt(packed + i / group * PackedBytesPerGroup(group), i % group);
        ASSERT_EQ(OutputBitsAt(out_buffer.get(), type, i),
                  ExpectedBits(type, q6bit_golden::Dequantize(code, 3, 0x3C00)))
            << TypeName(type) << " " << i;
      }
    }
    std::vector<uint8_t> codes(groups * group + 64, 0xEE);
    q6bit::UnpackGroups(packed, group, 2, groups, codes.data());
    for (size_t i = 0; i < codes.size(); ++i) {
      const bool inside = i >= 2 * group && i < groups * group;
      if (!inside) {
        ASSERT_EQ(codes[i], 0xEE) << "group " << group << " wrote index " << i;
      } else {
        ASSERT_EQ(codes[i],
                  q6bit_golden::CodeAt(packed + i / group * PackedBytesPerGroup(group), i % group))
            << i;
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
