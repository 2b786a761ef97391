// The weight tables of the packed matmul's decode path on AVX-512 VBMI
// (Highway's AVX3_DL target: Ice Lake, Sapphire Rapids, Zen 4 and later):
// their layout and their builders. kernels/linear_chunks-inl.h decodes 64
// codes through them. Included once per target, empty on every other one.
//
// Why a table: a group has one zero point and one scale, so its weights take
// at most 64 values, one per 6-bit code. Computing those 64 values with the
// dequantizer's own rounding (WeightsOfCodes: the fp16 RNE of
// (code - zp) * scale, then the bf16 RNE for bf16 activations) and looking
// each weight up costs one permute per table per 32 or 64 weights, instead
// of ~14 vector ops per 16 weights (convert, multiply, two fp16
// conversions, the bf16 rounding). The weights are the same bits: each one
// IS its code's table entry. The tables of a block of groups are built into
// an L1 buffer first (BuildTables), by Highway code, or on CPUs with
// AVX512_FP16 and AVX512_BF16 by native fp16 multiplies (~5x fewer
// instructions; BuildBF16TablesNative says why the bits are the same).
// The dequantizer's fp16 and bf16 outputs on this target go through word
// tables too (kernels/dequant_groups-inl.h).
//
// Two kinds of table:
//   bf16 weights: a word table, the 64 bf16 weights as 2 vectors of 32
//     words (WordTables). A chunk of 64 codes (48 packed bytes) becomes its
//     64 weights in 5 shuffles: vpermb and vpmultishiftqb put each code in
//     a byte, and two vpermt2w look up the even and the odd codes
//     (ChunkBF16Words). Word tables cost 2 byte permutes per group less to
//     build than byte tables, and the lookup is as cheap: on the 2-core box
//     (GEMV probe, one core, in cache) a group's tables took 22 cycles as
//     bytes and 16.5 as words, and 64 weights ~8 to decode.
//   fp32 weights (fp16 and fp32 activations): the fp16 value widened to
//     float has its low 13 bits zero, so 3 byte tables hold bytes 1..3 of
//     the 64 floats (ByteTables); a chunk is 3 vpermb lookups and unpacks of
//     bytes into words into floats, in k order (ChunkFloats).

#if defined(Q6BIT_KERNELS_LINEAR_TABLES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_TABLES_INL_H_
#undef Q6BIT_KERNELS_LINEAR_TABLES_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_TABLES_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <type_traits>

#include "hwy/highway.h"
#include "kernels/dequant-inl.h"
#include "kernels/q6bit_kernels.h"

#undef Q6BIT_HAVE_VBMI_LINEAR
#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#define Q6BIT_HAVE_VBMI_LINEAR 1
#else
#define Q6BIT_HAVE_VBMI_LINEAR 0
#endif

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if Q6BIT_HAVE_VBMI_LINEAR

// Bytes 1..3 of the 64 floats of one group's fp32 weights, one table a
// vector (entry = code). Byte 0 of every weight is zero.
struct ByteTables {
  __m512i b1, b2, b3;
};

// The 64 bf16 weights of one group: codes 0..31 in `low`, 32..63 in `high`.
struct WordTables {
  __m512i low, high;
};

template <OutputType kWeight>
using Tables = std::conditional_t<kWeight == OutputType::kBF16, WordTables, ByteTables>;

// Bytes of one group's tables in a block's table buffer.
template <OutputType kWeight>
constexpr size_t TableBytes() {
  return kWeight == OutputType::kBF16 ? 128 : 192;
}

// The 64-byte table of byte `kByte` (1..3) of the 64 floats w0..w3 (16
// entries each), by two rounds of two-source byte permutes.
template <int kByte>
HWY_INLINE __m512i TableOfByte(__m512i w0, __m512i w1, __m512i w2, __m512i w3) {
  // Round 1: bytes 0..31 of the result are byte kByte of entries 0..31 of
  // the pair (source bytes 4e + kByte of the 128 bytes w_lo:w_hi).
  HWY_ALIGN static constexpr uint8_t kPick[64] = {
#define Q6BIT_PICK(e) static_cast<uint8_t>(4 * (e) + kByte)
      // clang-format off
      Q6BIT_PICK(0), Q6BIT_PICK(1), Q6BIT_PICK(2), Q6BIT_PICK(3), Q6BIT_PICK(4),
      Q6BIT_PICK(5), Q6BIT_PICK(6), Q6BIT_PICK(7), Q6BIT_PICK(8), Q6BIT_PICK(9),
      Q6BIT_PICK(10), Q6BIT_PICK(11), Q6BIT_PICK(12), Q6BIT_PICK(13), Q6BIT_PICK(14),
      Q6BIT_PICK(15), Q6BIT_PICK(16), Q6BIT_PICK(17), Q6BIT_PICK(18), Q6BIT_PICK(19),
      Q6BIT_PICK(20), Q6BIT_PICK(21), Q6BIT_PICK(22), Q6BIT_PICK(23), Q6BIT_PICK(24),
      Q6BIT_PICK(25), Q6BIT_PICK(26), Q6BIT_PICK(27), Q6BIT_PICK(28), Q6BIT_PICK(29),
      Q6BIT_PICK(30), Q6BIT_PICK(31)};
  // clang-format on
#undef Q6BIT_PICK
  const __m512i pick = _mm512_load_si512(kPick);  // bytes 32..63: zero, unused
  const __m512i low = _mm512_permutex2var_epi8(w0, pick, w1);
  const __m512i high = _mm512_permutex2var_epi8(w2, pick, w3);
  // Round 2: bytes 0..31 of `low` then bytes 0..31 of `high` (source 64..95).
  HWY_ALIGN static constexpr uint8_t kJoin[64] = {
      0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
      22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75,
      76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95};
  return _mm512_permutex2var_epi8(low, _mm512_load_si512(kJoin), high);
}

// The high words (the bf16 bits) of the 32 floats a (entries 0..15), b
// (16..31), in order.
HWY_INLINE __m512i HighWords(__m512i a, __m512i b) {
  HWY_ALIGN static constexpr uint16_t kHigh[32] = {1,  3,  5,  7,  9,  11, 13, 15, 17, 19, 21,
                                                   23, 25, 27, 29, 31, 33, 35, 37, 39, 41, 43,
                                                   45, 47, 49, 51, 53, 55, 57, 59, 61, 63};
  return _mm512_permutex2var_epi16(a, _mm512_load_si512(kHigh), b);
}

// The tables of one group: its 64 possible weights computed exactly as the
// dequantizer computes each weight (WeightsOfCodes on codes 0..63, by
// SplitRound where the scale allows: fewer instructions than F16C and
// integer rounding, the same bits).
template <OutputType kWeight>
HWY_INLINE Tables<kWeight> GroupTables(int8_t zero_point, uint16_t scale_f16) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const auto zp = hn::Set(di, zero_point);
  const float scale = F16BitsToF32(scale_f16);
  const auto s = hn::Set(df, scale);
  const auto bits = [&](auto w) HWY_ATTR { return _mm512_castps_si512(w.raw); };
  __m512i w0, w1, w2, w3;
  const auto weights = [&](auto split) HWY_ATTR {
    constexpr bool kSplit = decltype(split)::value;
    w0 = bits(WeightsOfCodes<kWeight, kSplit>(df, hn::Iota(di, 0), zp, s));
    w1 = bits(WeightsOfCodes<kWeight, kSplit>(df, hn::Iota(di, 16), zp, s));
    w2 = bits(WeightsOfCodes<kWeight, kSplit>(df, hn::Iota(di, 32), zp, s));
    w3 = bits(WeightsOfCodes<kWeight, kSplit>(df, hn::Iota(di, 48), zp, s));
  };
  if (HWY_LIKELY(SplitRoundsExactly(scale))) {
    weights(std::true_type());
  } else {
    weights(std::false_type());
  }
  if constexpr (kWeight == OutputType::kBF16) {
    return WordTables{HighWords(w0, w1), HighWords(w2, w3)};
  } else {
    return ByteTables{TableOfByte<1>(w0, w1, w2, w3), TableOfByte<2>(w0, w1, w2, w3),
                      TableOfByte<3>(w0, w1, w2, w3)};
  }
}

HWY_INLINE void StoreTables(const WordTables& t, uint8_t* HWY_RESTRICT tables) {
  _mm512_store_si512(tables, t.low);
  _mm512_store_si512(tables + 64, t.high);
}

HWY_INLINE void StoreTables(const ByteTables& t, uint8_t* HWY_RESTRICT tables) {
  _mm512_store_si512(tables, t.b1);
  _mm512_store_si512(tables + 64, t.b2);
  _mm512_store_si512(tables + 128, t.b3);
}

template <OutputType kWeight>
HWY_INLINE Tables<kWeight> LoadTables(const uint8_t* HWY_RESTRICT tables) {
  if constexpr (kWeight == OutputType::kBF16) {
    return WordTables{_mm512_load_si512(tables), _mm512_load_si512(tables + 64)};
  } else {
    return ByteTables{_mm512_load_si512(tables), _mm512_load_si512(tables + 64),
                      _mm512_load_si512(tables + 128)};
  }
}

// The tables of `groups` groups into `tables` (64-byte aligned): groups
// `stride` apart in zero_point and scales_f16 (1: along a row; the groups
// per row: one group of consecutive rows).
template <OutputType kWeight>
HWY_INLINE void BuildTables(const int8_t* HWY_RESTRICT zero_point,
                            const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
                            uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  for (size_t g = 0; g < groups; ++g, tables += TableBytes<kWeight>()) {
    StoreTables(GroupTables<kWeight>(zero_point[g * stride], scales_f16[g * stride]), tables);
  }
}

// bf16 tables on CPUs that also have AVX512_FP16 and AVX512_BF16 (Sapphire
// Rapids and later; not in Highway 1.0.3's targets, so checked at run time):
// vmulph is the correctly rounded fp16 product, and (code - zp) * scale is
// exact in fp32, so vmulph of fp16(code - zp) (exact: |code - zp| <= 191)
// and the scale IS the reference's fp16 RNE of the fp32 product, subnormal
// results and overflow to inf included (FP16 arithmetic ignores DAZ/FTZ).
// vcvtph2ps widens exactly and vcvtne2ps2bf16 rounds to nearest even (its
// flushing of fp32 subnormals never applies: fp16 values are fp32-normal),
// so every non-NaN weight equals GroupTables<kBF16>'s; a NaN stays a NaN.
// 8 instructions for 64 weights instead of ~40.
#define Q6BIT_NATIVE_TABLES_ATTR __attribute__((target(HWY_TARGET_STR ",avx512fp16,avx512bf16")))

// The 32 fp16 values of h rounded to bf16 (nearest even), in order.
Q6BIT_NATIVE_TABLES_ATTR HWY_INLINE __m512i BF16OfF16(__m512h h) {
  const __m512i bits = _mm512_castph_si512(h);
  const __m512 low = _mm512_cvtph_ps(_mm512_castsi512_si256(bits));
  const __m512 high = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(bits, 1));
  return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

inline Q6BIT_NATIVE_TABLES_ATTR HWY_NOINLINE void BuildBF16TablesNative(
    const int8_t* HWY_RESTRICT zero_point, const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
    uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  HWY_ALIGN static constexpr int16_t kCodes[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                   11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                   22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
  const __m512i codes_low = _mm512_load_si512(kCodes);
  const __m512i codes_high = _mm512_add_epi16(codes_low, _mm512_set1_epi16(32));
  for (size_t g = 0; g < groups; ++g, tables += TableBytes<OutputType::kBF16>()) {
    const __m512i zp = _mm512_set1_epi16(zero_point[g * stride]);
    const __m512h scale = _mm512_castsi512_ph(_mm512_set1_epi16(scales_f16[g * stride]));
    const auto weights = [&](__m512i codes) Q6BIT_NATIVE_TABLES_ATTR {
      return BF16OfF16(_mm512_mul_ph(_mm512_cvtepi16_ph(_mm512_sub_epi16(codes, zp)), scale));
    };
    StoreTables(WordTables{weights(codes_low), weights(codes_high)}, tables);
  }
}

// bf16 tables on CPUs with AVX512_BF16 but not AVX512_FP16 (Zen 4 and 5,
// Cooper Lake): (code - zp) * scale in fp32 (exact, as in GroupTables),
// rounded to nearest even fp16 as a float, and vcvtne2ps2bf16 (as in
// BuildBF16TablesNative) instead of the integer bf16 rounding and the word
// permutes. The fp16 rounding is SplitRound<13> (three fp32 operations)
// for groups whose scale SplitRoundsExactly accepts (the same value as
// RoundToF16: fp16-inl.h), else vcvtps2ph's round to nearest even fp16
// (what the dequantizer's own RoundToF16 does on this target, subnormals
// included) widened again. Scales and zero points are widened 16 groups at
// a time and each group's broadcast from memory. On the Zen 5 box
// (micro-benchmark, 12 groups a call) a group took 11.5 cycles with
// vcvtps2ph for all and per-group scalar widening, 8.3 so. The row passes
// of kernels/linear_bf16dot-inl.h build each group's tables as they reach
// it (BF16GroupTables::Of) rather than a block's ahead of the pass: see
// there.
#define Q6BIT_F16C_TABLES_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))

// Groups of one block at most (kVbmiBlockGroups, the AMX tiles' 16 rows).
constexpr size_t kBF16GroupTablesMax = 64;

// Scales and zero points of up to kBF16GroupTablesMax groups, widened to
// floats, and which of them SplitRound<13> rounds exactly.
struct BF16GroupTables {
  HWY_ALIGN float scale[kBF16GroupTablesMax];
  // scale * (2^13 + 1): exact in fp32 (an fp16 scale has 11 significant
  // bits, the product 24), Veltkamp's multiplier folded into the scale.
  HWY_ALIGN float split_scale[kBF16GroupTablesMax];
  HWY_ALIGN float zero_point[kBF16GroupTablesMax];
  uint64_t split;  // bit g: SplitRoundsExactly(scale[g])

  // Groups [0, groups) of zero_point and scales_f16, `stride` apart.
  HWY_INLINE void Widen(const int8_t* HWY_RESTRICT zero_points,
                        const uint16_t* HWY_RESTRICT scales_f16, size_t groups, size_t stride = 1) {
    split = 0;
    for (size_t g = 0; g < groups; g += 16) {
      const size_t count = std::min<size_t>(16, groups - g);
      uint16_t gathered_scales[16];
      int8_t gathered_zero_points[16];
      const uint16_t* s = scales_f16 + g * stride;
      const int8_t* z = zero_points + g * stride;
      if (stride != 1) {
        for (size_t i = 0; i < count; ++i) {
          gathered_scales[i] = s[i * stride];
          gathered_zero_points[i] = z[i * stride];
        }
        s = gathered_scales;
        z = gathered_zero_points;
      }
      const __mmask16 lanes = static_cast<__mmask16>((uint32_t{1} << count) - 1);
      const __m512 widened = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, s));
      _mm512_store_ps(scale + g, widened);
      _mm512_store_ps(split_scale + g, _mm512_mul_ps(widened, _mm512_set1_ps(kSplitF16)));
      _mm512_store_ps(zero_point + g,
                      _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes, z))));
      const hn::Full512<float> df;
      const __mmask16 exact = SplitRoundsExactly(df, hn::Vec512<float>{widened}).raw;
      split |= uint64_t{static_cast<uint16_t>(exact & lanes)} << g;
    }
  }

  // Group g's tables. Where SplitRound<13> applies, its three operations
  // on v = d * s (d = code - zp) are taken as c = d * split_scale (the
  // same RN(v * (2^13 + 1)): d * split_scale is that product exactly),
  // t = c - d * s by one FMA (RN(c - v): v is exact), c - t: four
  // operations for the five of product then SplitRound, the same bits,
  // signed zeros included (d = 0: c and the result are 0 * s).
  Q6BIT_F16C_TABLES_ATTR HWY_INLINE WordTables Of(size_t g) const {
    HWY_ALIGN static constexpr float kCodes[64] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
        22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
        44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
    const __m512 zp = _mm512_set1_ps(zero_point[g]);
    const __m512 s = _mm512_set1_ps(scale[g]);
    const bool exact = split >> g & 1;
    const __m512 split_s = _mm512_set1_ps(split_scale[g]);
    const auto f16 = [&](size_t first_code) Q6BIT_F16C_TABLES_ATTR {
      const __m512 d = _mm512_sub_ps(_mm512_load_ps(kCodes + first_code), zp);
      if (exact) {
        const __m512 c = _mm512_mul_ps(d, split_s);
        return _mm512_sub_ps(c, _mm512_fnmadd_ps(d, s, c));
      }
      return _mm512_cvtph_ps(
          _mm512_cvtps_ph(_mm512_mul_ps(d, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    };
    return WordTables{(__m512i)_mm512_cvtne2ps_pbh(f16(16), f16(0)),
                      (__m512i)_mm512_cvtne2ps_pbh(f16(48), f16(32))};
  }
};

inline Q6BIT_F16C_TABLES_ATTR HWY_NOINLINE void BuildBF16TablesF16C(
    const int8_t* HWY_RESTRICT zero_point, const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
    uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  BF16GroupTables widened;
  for (size_t g0 = 0; g0 < groups; g0 += kBF16GroupTablesMax) {
    const size_t count = std::min(kBF16GroupTablesMax, groups - g0);
    widened.Widen(zero_point + g0 * stride, scales_f16 + g0 * stride, count, stride);
    for (size_t g = 0; g < count; ++g, tables += TableBytes<OutputType::kBF16>()) {
      StoreTables(widened.Of(g), tables);
    }
  }
}

// Which code builds the bf16 tables: the best the CPU has and allows.
enum class BF16TableBuilder { kPortable, kF16C, kFP16 };

HWY_INLINE BF16TableBuilder ChooseBF16TableBuilder() {
  if (CpuExtensionUsable(CpuExtension::kFP16Tables)) return BF16TableBuilder::kFP16;
  if (CpuExtensionUsable(CpuExtension::kBF16Tables)) return BF16TableBuilder::kF16C;
  return BF16TableBuilder::kPortable;
}

// The bf16 tables by `builder` (BuildTables' arguments).
HWY_INLINE void BuildBF16Tables(BF16TableBuilder builder, const int8_t* HWY_RESTRICT zero_point,
                                const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
                                uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  switch (builder) {
    case BF16TableBuilder::kFP16:
      return BuildBF16TablesNative(zero_point, scales_f16, groups, tables, stride);
    case BF16TableBuilder::kF16C:
      return BuildBF16TablesF16C(zero_point, scales_f16, groups, tables, stride);
    case BF16TableBuilder::kPortable:
      return BuildTables<OutputType::kBF16>(zero_point, scales_f16, groups, tables, stride);
  }
}

#endif  // Q6BIT_HAVE_VBMI_LINEAR

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_TABLES_INL_H_
