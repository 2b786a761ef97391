// GoogleTest of the packed matmul kernel (q6bit::LinearRows), once per
// compiled Highway target, against a double-precision golden sum over the
// exact dequantized weights of the scalar golden model (tests/cpp/golden.h).

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"
#include "tests/cpp/golden.h"
#include "tests/cpp/target_test.h"

namespace {

using q6bit::OutputType;

class LinearTest : public q6bit_test::TargetTest {};

INSTANTIATE_TEST_SUITE_P(AllCompiledTargets, LinearTest,
                         testing::ValuesIn(q6bit_test::CompiledTargets()),
                         hwy::TestParamTargetName);

// A random [N, K] triple (any packed bytes; scales of moderate size so that
// no product overflows) and its weights as the kernel must see them.
struct Weights {
  size_t rows, cols, group_size;
  std::vector<uint8_t> packed;
  std::vector<int8_t> zero_points;
  std::vector<uint16_t> scales;
  std::vector<double> w;  // [rows, cols], the weight converted to the type
};

double BF16ToDouble(uint16_t bits) {
  const uint32_t f32 = uint32_t{bits} << 16;
  float f;
  memcpy(&f, &f32, sizeof(f));
  return f;
}

// c->w from c's triple, by the golden model.
void ComputeWeights(Weights* c, OutputType type) {
  const size_t group_bytes = q6bit::PackedBytesPerGroup(c->group_size);
  c->w.clear();
  for (size_t g = 0; g < c->scales.size(); ++g) {
    for (size_t i = 0; i < c->group_size; ++i) {
      const uint8_t code = q6bit_golden::CodeAt(&c->packed[g * group_bytes], i);
      const uint16_t h = q6bit_golden::Dequantize(code, c->zero_points[g], c->scales[g]);
      c->w.push_back(type == OutputType::kBF16 ? BF16ToDouble(q6bit_golden::F16ToBF16(h))
                                               : q6bit_golden::F16ToDouble(h));
    }
  }
}

Weights MakeWeights(size_t rows, size_t groups_per_row, size_t group_size, OutputType type,
                    std::mt19937* rng) {
  Weights c{rows, groups_per_row * group_size, group_size, {}, {}, {}, {}};
  const size_t groups = rows * groups_per_row;
  const size_t group_bytes = q6bit::PackedBytesPerGroup(group_size);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> mantissa(0, 1023);
  std::uniform_int_distribution<int> exponent(5, 14);  // 2^-10 .. 2^-1
  c.packed.resize(groups * group_bytes);
  for (uint8_t& b : c.packed) b = byte(*rng);
  for (size_t g = 0; g < groups; ++g) {
    c.zero_points.push_back(static_cast<int8_t>(byte(*rng) - 128));
    const uint16_t sign = (byte(*rng) & 1) << 15;
    c.scales.push_back(sign | exponent(*rng) << 10 | mantissa(*rng));
  }
  ComputeWeights(&c, type);
  return c;
}

// The float with the top 16 bits of v (v truncated to a bf16 value).
float TruncateToBF16(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  bits &= 0xFFFF0000u;
  memcpy(&v, &bits, sizeof(v));
  return v;
}

// What x holds: uniform in [-2, 2) times 2^exponent, as floats or as bf16
// values (what q6bit.linear passes with bf16 weights: bf16 activations).
struct XValues {
  bool bf16;
  int exponent;
};

// y = x @ W.T by the kernel over rows [row_begin, row_end) into an output of
// row stride ldy = N + 3 (other positions must stay untouched), against the
// double sum: |y - ref| <= gamma_K * sum_k |x_k w_k| with gamma_K =
// K u / (1 - K u), u = 2^-24, the bound of any fp32 summation order of K
// products (FMA or not); the kernel rounds nothing else. Plus (K + 1) half
// ulps of the smallest subnormal: with gradual underflow an FMA whose result
// is subnormal may lose that much absolutely (a kernel that flushed
// subnormals to zero would lose far more).
void ExpectLinear(const Weights& c, OutputType type, size_t m, size_t row_begin, size_t row_end,
                  std::mt19937* rng, const std::string& what, XValues values) {
  const size_t k = c.cols, ldy = c.rows + 3;
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::vector<float> x(m * k);
  for (float& v : x) {
    v = ldexpf(value(*rng), values.exponent);
    if (values.bf16) v = TruncateToBF16(v);
  }
  const float kSentinel = -12345.0f;
  std::vector<float> y(m * ldy, kSentinel);
  q6bit::LinearRows(x.data(), m, k, c.packed.data(), c.zero_points.data(), c.scales.data(),
                    c.group_size, type, row_begin, row_end, y.data(), ldy);
  const double u = ldexp(1.0, -24);
  const double gamma = k * u / (1 - k * u);
  size_t failures = 0;
  for (size_t i = 0; i < m; ++i) {
    for (size_t n = 0; n < ldy; ++n) {
      const float got = y[i * ldy + n];
      if (n < row_begin || n >= row_end) {
        if (got != kSentinel && ++failures <= 5)
          ADD_FAILURE() << what << ": wrote y[" << i << ", " << n << "]";
        continue;
      }
      double ref = 0, magnitude = 0;
      for (size_t j = 0; j < k; ++j) {
        ref += double{x[i * k + j]} * c.w[n * k + j];
        magnitude += fabs(double{x[i * k + j]} * c.w[n * k + j]);
      }
      const double error = fabs(got - ref);
      const double bound = gamma * magnitude + (k + 1) * ldexp(1.0, -150);
      if (!(error <= bound) && ++failures <= 5) {
        ADD_FAILURE() << what << ": y[" << i << ", " << n << "] = " << got << ", expected " << ref
                      << " within " << bound << " (error " << error << ")";
      }
    }
  }
  EXPECT_EQ(failures, 0u) << what;
}

std::string TypeName(OutputType type) {
  return type == OutputType::kF16 ? "f16" : type == OutputType::kBF16 ? "bf16" : "f32";
}

void ExpectAllShapes(const std::string& variant);

// Every batch 1..17 (full passes of rows plus each remainder), N = 37 (two
// 16-row AMX tiles and a short one; 8-row tiles, pairs of rows and one left
// over), K with and without a tail shorter than a vector, every weight type.

TEST_P(LinearTest, MatchesDoubleSumWithinBound) {
  // Every combination of the x86 extensions beyond AVX3_DL that this CPU
  // has forbidden (AVX3_DL only; none forbidden first), but those that
  // forbid one that another allowed one overrides (the same code runs).
  using q6bit::CpuExtension;
  constexpr int kCount = 4;
  const CpuExtension all[kCount] = {CpuExtension::kFP16Tables, CpuExtension::kBF16Tables,
                                    CpuExtension::kBF16Dot, CpuExtension::kAmx};
  const char* names[kCount] = {"fp16 tables", "bf16 tables", "vdpbf16ps", "AMX"};
  const int overridden_by[kCount] = {-1, 0, 3, -1};
  bool usable[kCount];
  for (int e = 0; e < kCount; ++e) usable[e] = q6bit::CpuExtensionInUse(all[e]);
  for (int forbid = 0; forbid < 1 << kCount; ++forbid) {
    std::string variant;
    bool possible = true;
    for (int e = 0; e < kCount; ++e) {
      const bool off = forbid >> e & 1;
      const int over = overridden_by[e];
      possible &= !off || (usable[e] && (over < 0 || !usable[over] || (forbid >> over & 1)));
      q6bit::AllowCpuExtension(all[e], !off);
      if (off) variant += std::string(" (no ") + names[e] + ")";
    }
    if (possible) ExpectAllShapes(variant);
  }
  for (CpuExtension e : all) q6bit::AllowCpuExtension(e, true);
}

// bf16 weights with x that vdpbf16ps and AMX must not take (they treat
// subnormal inputs as zero and flush subnormal results): x that is not
// bf16, and bf16 x small enough that products and sums are subnormal, or
// that is subnormal itself. The kernel must notice and keep every tiny
// product.
TEST_P(LinearTest, BF16WeightsWithXThatVdpbf16psCannotTake) {
  std::mt19937 rng(7);
  const Weights c = MakeWeights(9, 2, 128, OutputType::kBF16, &rng);
  for (size_t m : {3, 4, 8}) {  // AMX from 3 rows, vdpbf16ps from 4
    const std::string rows = " M=" + std::to_string(m);
    ExpectLinear(c, OutputType::kBF16, m, 0, c.rows, &rng, "float x" + rows, {false, 0});
    ExpectLinear(c, OutputType::kBF16, m, 0, c.rows, &rng, "bf16 x ~2^-120" + rows, {true, -120});
    ExpectLinear(c, OutputType::kBF16, m, 0, c.rows, &rng, "bf16 x ~2^-130" + rows, {true, -130});
    ExpectLinear(c, OutputType::kBF16, m, 0, c.rows, &rng, "bf16 x ~2^-81" + rows, {true, -81});
  }
}

void ExpectAllShapes(const std::string& variant) {
  std::mt19937 rng(1234);
  struct Shape {
    size_t group_size, groups_per_row;
  };
  for (const Shape& s :
       {Shape{4, 5}, Shape{12, 3}, Shape{32, 3}, Shape{64, 3}, Shape{128, 2}, Shape{256, 2},
        Shape{128, 13}}) {  // 13 groups: 8 rows of x take K in blocks (12 and 1)
    for (OutputType type : {OutputType::kF16, OutputType::kBF16, OutputType::kF32}) {
      const Weights c = MakeWeights(37, s.groups_per_row, s.group_size, type, &rng);
      for (size_t m = 1; m <= 17; ++m) {
        const std::string what = "G=" + std::to_string(s.group_size) +
                                 " K=" + std::to_string(c.cols) + " M=" + std::to_string(m) + " " +
                                 TypeName(type) + variant;
        ExpectLinear(c, type, m, 0, c.rows, &rng, what, {type == OutputType::kBF16, 0});
      }
    }
  }
}

// x of one-hot rows (row m: 1 at column m, 0 elsewhere; bf16 values too)
// gives each weight itself, y[m, n] = w[n, m] bit for bit: the products are
// exact and the sums add zeros. So every weight the kernel decodes is
// checked, where MatchesDoubleSumWithinBound's bound would let one that is
// a rounding off pass. Group 0 of each row has a scale of every fp16
// exponent (subnormal products, products that overflow to inf, NaN among
// them) with edge and random mantissas, both signs; group 1 an ordinary
// scale; zero points over the whole int8 range; every code in each group.
TEST_P(LinearTest, OneHotXGivesEachWeightExactly) {
  std::mt19937 rng(2024);
  std::uniform_int_distribution<int> mantissa(0, 1023);
  for (size_t group_size : {32, 64, 128}) {
    for (OutputType type : {OutputType::kF16, OutputType::kBF16, OutputType::kF32}) {
      Weights c{0, 2 * group_size, group_size, {}, {}, {}, {}};
      for (int exponent = 0; exponent < 32; ++exponent) {
        for (int m : {0, 0x3FF, mantissa(rng)}) {
          for (int sign : {0, 1}) {
            c.scales.push_back(sign << 15 | exponent << 10 | m);
            c.scales.push_back(0x2000 | mantissa(rng));  // 2^-7 .. 2^-6
            c.rows++;
          }
        }
      }
      for (size_t g = 0; g < c.scales.size(); ++g) {
        c.zero_points.push_back(static_cast<int8_t>(g * 37 % 256 - 128));
        for (size_t i = 0; i < group_size; i += 4) {  // codes (i + g) mod 64, packed
          uint32_t v = 0;
          for (size_t j = 0; j < 4; ++j) v |= uint32_t((i + j + g) % 64) << (6 * j);
          for (int b = 0; b < 3; ++b) c.packed.push_back(static_cast<uint8_t>(v >> (8 * b)));
        }
      }
      ComputeWeights(&c, type);
      const size_t k = c.cols, n = c.rows;
      std::vector<float> x(k * k, 0.0f), y(k * n);
      for (size_t m = 0; m < k; ++m) x[m * k + m] = 1.0f;
      q6bit::LinearRows(x.data(), k, k, c.packed.data(), c.zero_points.data(), c.scales.data(),
                        group_size, type, 0, n, y.data(), n);
      // Non-finite weights of each row: 0 * inf and 0 * NaN make every sum
      // of the row NaN but the one whose 1 meets the only inf.
      std::vector<size_t> non_finite(n, 0);
      for (size_t r = 0; r < n; ++r) {
        for (size_t j = 0; j < k; ++j) non_finite[r] += !std::isfinite(c.w[r * k + j]);
      }
      size_t failures = 0;
      for (size_t m = 0; m < k; ++m) {
        for (size_t r = 0; r < n; ++r) {
          const double w = c.w[r * k + m];
          const bool others = non_finite[r] > (std::isfinite(w) ? 0u : 1u);
          const double ref = others ? NAN : w;  // sum of 1 * w and zeros
          const float got = y[m * n + r];
          const bool ok = isnan(ref) ? isnan(got) : double{got} == ref;
          if (!ok && ++failures <= 5) {
            ADD_FAILURE() << "G=" << group_size << " " << TypeName(type) << ": y[" << m << ", " << r
                          << "] = " << got << ", weight " << ref << " (scale 0x" << std::hex
                          << c.scales[r * 2 + m / group_size] << std::dec << ", zero point "
                          << int{c.zero_points[r * 2 + m / group_size]} << ")";
          }
        }
      }
      EXPECT_EQ(failures, 0u) << "G=" << group_size << " " << TypeName(type);
    }
  }
}

// A row range writes only its own columns of y, and reads only its rows'
// groups (the kernel is split across threads by rows).
TEST_P(LinearTest, RowRangeWritesOnlyItsColumns) {
  std::mt19937 rng(99);
  const Weights c = MakeWeights(9, 4, 32, OutputType::kBF16, &rng);
  ExpectLinear(c, OutputType::kBF16, 5, 2, 7, &rng, "rows [2, 7)", {true, 0});
  ExpectLinear(c, OutputType::kBF16, 3, 4, 4, &rng, "empty row range", {true, 0});
}

// K = 0 (no groups): every sum is empty, so y is 0.
TEST_P(LinearTest, EmptyRowsGiveZero) {
  std::vector<float> y(3, 1.0f);
  q6bit::LinearRows(nullptr, 1, 0, nullptr, nullptr, nullptr, 4, OutputType::kF32, 0, 3, y.data(),
                    3);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
