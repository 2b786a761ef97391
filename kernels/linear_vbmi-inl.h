// The packed matmul's decode path on AVX-512 VBMI (Highway's AVX3_DL
// target: Ice Lake, Sapphire Rapids, Zen 4 and later), included once per
// target by kernels/linear-inl.h; empty on every other target.
//
// Why a table: a group has one zero point and one scale, so its weights take
// at most 64 values, one per 6-bit code. Computing those 64 values with the
// dequantizer's own code (DequantizeCodesToF32: the fp16 RNE of
// (code - zp) * scale, then the bf16 RNE for bf16 activations) and looking
// each weight up costs one byte permute per table byte per 64 weights,
// instead of ~14 vector ops per 16 weights (convert, multiply, two fp16
// conversions, the bf16 rounding). The weights are the same bits: each one
// IS its code's table entry. The tables of a block of groups are built
// into an L1 buffer first (BuildTables), by Highway code, or on CPUs with
// AVX512_FP16 and AVX512_BF16 by native fp16 multiplies (~5x fewer
// instructions; BuildBF16TablesNative says why the bits are the same).
// Measured on the 16-core host at M = 1, all cores busy (BENCHMARKS.md,
// "Packed linear"): 1.9 G weights/s per core before, 2.6 with the portable
// tables, 3.3 with the native ones; one core alone, data in cache: 5.4 and
// 6.9.
//
// A chunk of 64 codes (48 packed bytes) becomes 4 vectors of 16 floats in
// 11 byte-shuffle ops:
//   1. vpermb puts two 3-byte triplets (8 codes) into each 64-bit word, in
//      an order chosen so that step 4's in-block unpacks emit the weights in
//      k order (x needs no reordering);
//   2. vpmultishiftqb moves each 6-bit code to its own byte (the top two
//      bits are left over; vpermb reads only the low 6 bits of an index);
//   3. vpermb per table byte (2 for bf16 weights, 3 for fp16 ones widened
//      to float: an fp16 value's float has its low 13 bits zero);
//   4. unpacks of bytes into words into floats.
// bf16 weights against bf16 x can skip step 4's widening: the bf16 words
// of ChunkBF16Words (6 shuffles) go to vdpbf16ps on CPUs with AVX512_BF16
// (DotPackedRowBF16Dot), or to AMX tiles (kernels/linear_amx-inl.h).

#if defined(Q6BIT_KERNELS_LINEAR_VBMI_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
#undef Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "hwy/highway.h"
#include "kernels/dequant-inl.h"
#include "kernels/linear_rows-inl.h"
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

// Codes per chunk: one 512-bit vector of code bytes.
constexpr size_t kVbmiChunk = 64;

// Bytes 1..3 of the 64 floats of one group's weights, one table a vector
// (entry = code). Byte 0 of every weight is zero, and so is byte 1 for bf16.
struct ByteTables {
  __m512i b1, b2, b3;
};

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

// The tables of one group: its 64 possible weights computed exactly as the
// dequantizer computes each weight (DequantizeCodesToF32 on codes 0..63).
template <OutputType kWeight>
HWY_INLINE ByteTables GroupTables(int8_t zero_point, uint16_t scale_f16) {
  const DU32 du32;
  const hn::Rebind<float, DU32> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Repartition<uint8_t, DU32> du8;
  const auto codes = hn::BitCast(du32, hn::Iota(du8, 0));  // byte j = code j
  const auto zp = hn::Set(di, zero_point);
  const auto scale = hn::Set(df, F16BitsToF32(scale_f16));
  const auto bits = [&](auto w) HWY_ATTR { return _mm512_castps_si512(w.raw); };
  const __m512i w0 = bits(DequantizeCodesToF32<kWeight>(df, Quarter<0>(df, codes), zp, scale));
  const __m512i w1 = bits(DequantizeCodesToF32<kWeight>(df, Quarter<1>(df, codes), zp, scale));
  const __m512i w2 = bits(DequantizeCodesToF32<kWeight>(df, Quarter<2>(df, codes), zp, scale));
  const __m512i w3 = bits(DequantizeCodesToF32<kWeight>(df, Quarter<3>(df, codes), zp, scale));
  ByteTables t;
  t.b1 = kWeight == OutputType::kBF16 ? _mm512_setzero_si512() : TableOfByte<1>(w0, w1, w2, w3);
  t.b2 = TableOfByte<2>(w0, w1, w2, w3);
  t.b3 = TableOfByte<3>(w0, w1, w2, w3);
  return t;
}

// Bytes of one group's tables in a block's table buffer: b2, b3, then b1
// for fp16 weights.
template <OutputType kWeight>
constexpr size_t TableBytes() {
  return kWeight == OutputType::kBF16 ? 128 : 192;
}

template <OutputType kWeight>
HWY_INLINE ByteTables LoadTables(const uint8_t* HWY_RESTRICT tables) {
  ByteTables t;
  t.b2 = _mm512_load_si512(tables);
  t.b3 = _mm512_load_si512(tables + 64);
  t.b1 = kWeight == OutputType::kBF16 ? _mm512_setzero_si512() : _mm512_load_si512(tables + 128);
  return t;
}

// The tables of `groups` groups into `tables` (64-byte aligned): groups
// `stride` apart in zero_point and scales_f16 (1: along a row; the groups
// per row: one group of consecutive rows).
template <OutputType kWeight>
HWY_INLINE void BuildTables(const int8_t* HWY_RESTRICT zero_point,
                            const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
                            uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  for (size_t g = 0; g < groups; ++g, tables += TableBytes<kWeight>()) {
    const ByteTables t = GroupTables<kWeight>(zero_point[g * stride], scales_f16[g * stride]);
    _mm512_store_si512(tables, t.b2);
    _mm512_store_si512(tables + 64, t.b3);
    if constexpr (kWeight != OutputType::kBF16) _mm512_store_si512(tables + 128, t.b1);
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

Q6BIT_NATIVE_TABLES_ATTR HWY_NOINLINE void BuildBF16TablesNative(
    const int8_t* HWY_RESTRICT zero_point, const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
    uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  HWY_ALIGN static constexpr int16_t kCodes[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                                   11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                                   22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
  // Byte `low/high` of bf16 words 0..31 of the first source, then 0..31 of
  // the second (source bytes 64..127).
  HWY_ALIGN static constexpr uint8_t kLow[64] = {
      0,  2,  4,   6,   8,   10,  12,  14,  16,  18,  20,  22,  24,  26,  28,  30,
      32, 34, 36,  38,  40,  42,  44,  46,  48,  50,  52,  54,  56,  58,  60,  62,
      64, 66, 68,  70,  72,  74,  76,  78,  80,  82,  84,  86,  88,  90,  92,  94,
      96, 98, 100, 102, 104, 106, 108, 110, 112, 114, 116, 118, 120, 122, 124, 126};
  const __m512i codes_low = _mm512_load_si512(kCodes);
  const __m512i codes_high = _mm512_add_epi16(codes_low, _mm512_set1_epi16(32));
  const __m512i pick_low = _mm512_load_si512(kLow);
  const __m512i pick_high = _mm512_add_epi8(pick_low, _mm512_set1_epi8(1));
  for (size_t g = 0; g < groups; ++g, tables += TableBytes<OutputType::kBF16>()) {
    const __m512i zp = _mm512_set1_epi16(zero_point[g * stride]);
    const __m512h scale = _mm512_castsi512_ph(_mm512_set1_epi16(scales_f16[g * stride]));
    const __m512i w0 =
        BF16OfF16(_mm512_mul_ph(_mm512_cvtepi16_ph(_mm512_sub_epi16(codes_low, zp)), scale));
    const __m512i w1 =
        BF16OfF16(_mm512_mul_ph(_mm512_cvtepi16_ph(_mm512_sub_epi16(codes_high, zp)), scale));
    _mm512_store_si512(tables, _mm512_permutex2var_epi8(w0, pick_low, w1));
    _mm512_store_si512(tables + 64, _mm512_permutex2var_epi8(w0, pick_high, w1));
  }
}

// The bf16 tables by whichever builder `native` says (BuildTables'
// arguments).
HWY_INLINE void BuildBF16Tables(bool native, const int8_t* HWY_RESTRICT zero_point,
                                const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
                                uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  if (native) return BuildBF16TablesNative(zero_point, scales_f16, groups, tables, stride);
  BuildTables<OutputType::kBF16>(zero_point, scales_f16, groups, tables, stride);
}

// Constants of the chunk unpack (steps 1 and 2 above).
struct ChunkUnpack {
  __m512i spread, shifts;
};

HWY_INLINE ChunkUnpack MakeChunkUnpack() {
  // Word q (0..7) holds triplets A, B at bytes 0..2, 3..5. Step 4 gives
  // vector j (0..3), block L (0..3), lane i the code at byte 16L + 4j + i,
  // and that must be code 16j + 4L + i (triplet 4j + L): so word 2L holds
  // triplets L, 4 + L and word 2L + 1 triplets 8 + L, 12 + L.
  HWY_ALIGN static constexpr uint8_t kSpread[64] = {
#define Q6BIT_WORD(a, b) 3 * (a), 3 * (a) + 1, 3 * (a) + 2, 3 * (b), 3 * (b) + 1, 3 * (b) + 2, 0, 0
      // clang-format off
      Q6BIT_WORD(0, 4), Q6BIT_WORD(8, 12), Q6BIT_WORD(1, 5), Q6BIT_WORD(9, 13),
      Q6BIT_WORD(2, 6), Q6BIT_WORD(10, 14), Q6BIT_WORD(3, 7), Q6BIT_WORD(11, 15)};
  // clang-format on
#undef Q6BIT_WORD
  // Byte r of each word: the 8 bits from bit 6r (code r of the 8).
  HWY_ALIGN static constexpr uint8_t kShifts[64] = {
      0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30,
      36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18,
      24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42};
  return {_mm512_load_si512(kSpread), _mm512_load_si512(kShifts)};
}

// The 64 weights of the chunk at `packed` (48 bytes, all read, none past)
// as 4 vectors of floats in k order: weights 16j..16j+15 in out[j].
template <OutputType kWeight>
HWY_INLINE void ChunkWeights(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                             const ByteTables& t, __m512& f0, __m512& f1, __m512& f2, __m512& f3) {
  const __m512i raw = _mm512_maskz_loadu_epi8((__mmask64{1} << 48) - 1, packed);
  const __m512i codes =
      _mm512_multishift_epi64_epi8(unpack.shifts, _mm512_permutexvar_epi8(unpack.spread, raw));
  const __m512i b2 = _mm512_permutexvar_epi8(codes, t.b2);
  const __m512i b3 = _mm512_permutexvar_epi8(codes, t.b3);
  const __m512i high_a = _mm512_unpacklo_epi8(b2, b3);  // bytes 2, 3 of 16L + 0..7
  const __m512i high_b = _mm512_unpackhi_epi8(b2, b3);  // of 16L + 8..15
  __m512i low_a = _mm512_setzero_si512(), low_b = low_a;
  if constexpr (kWeight != OutputType::kBF16) {
    const __m512i b1 = _mm512_permutexvar_epi8(codes, t.b1);
    low_a = _mm512_unpacklo_epi8(low_a, b1);
    low_b = _mm512_unpackhi_epi8(low_b, b1);
  }
  f0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low_a, high_a));
  f1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low_a, high_a));
  f2 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low_b, high_b));
  f3 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low_b, high_b));
}

// The chunk unpack of the bf16-products path: word 2L holds triplets 2L,
// 2L + 1 and word 2L + 1 triplets 8 + 2L, 9 + 2L, so that the bf16 words of
// ChunkBF16Words come out in k order (codes 0..31, then 32..63).
HWY_INLINE ChunkUnpack MakeChunkUnpackBF16() {
  HWY_ALIGN static constexpr uint8_t kSpread[64] = {
#define Q6BIT_WORD(a, b) 3 * (a), 3 * (a) + 1, 3 * (a) + 2, 3 * (b), 3 * (b) + 1, 3 * (b) + 2, 0, 0
      // clang-format off
      Q6BIT_WORD(0, 1), Q6BIT_WORD(8, 9), Q6BIT_WORD(2, 3), Q6BIT_WORD(10, 11),
      Q6BIT_WORD(4, 5), Q6BIT_WORD(12, 13), Q6BIT_WORD(6, 7), Q6BIT_WORD(14, 15)};
  // clang-format on
#undef Q6BIT_WORD
  return {_mm512_load_si512(kSpread), MakeChunkUnpack().shifts};
}

// The 64 bf16 weights of the chunk at `packed` in k order: 0..31 in `low`,
// 32..63 in `high` (6 byte shuffles).
HWY_INLINE void ChunkBF16Words(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                               const ByteTables& t, __m512i& low, __m512i& high) {
  const __m512i raw = _mm512_maskz_loadu_epi8((__mmask64{1} << 48) - 1, packed);
  const __m512i codes =
      _mm512_multishift_epi64_epi8(unpack.shifts, _mm512_permutexvar_epi8(unpack.spread, raw));
  const __m512i b2 = _mm512_permutexvar_epi8(codes, t.b2);
  const __m512i b3 = _mm512_permutexvar_epi8(codes, t.b3);
  low = _mm512_unpacklo_epi8(b2, b3);
  high = _mm512_unpackhi_epi8(b2, b3);
}

#define Q6BIT_BF16_DOT_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))

// DotPackedRowVbmi for bf16 weights and bf16 x (`xb`, bits): vdpbf16ps
// adds pairs of exact products, half the instructions of fp32 FMAs on
// widened weights, and no widening.
template <size_t kRows>
Q6BIT_BF16_DOT_ATTR HWY_INLINE void DotPackedRowBF16Dot(const uint8_t* HWY_RESTRICT packed,
                                                        const uint8_t* HWY_RESTRICT tables,
                                                        size_t group_size, size_t groups,
                                                        const uint16_t* HWY_RESTRICT xb, size_t K,
                                                        bool accumulate, float* HWY_RESTRICT y,
                                                        size_t ldy) {
  static_assert(kRows >= 1 && kRows <= 8, "rows per pass");
  const ChunkUnpack unpack = MakeChunkUnpackBF16();
  __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  __m512 a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0;
#define Q6BIT_ROW_DOT(r)                                                                     \
  if constexpr (kRows > r) {                                                                 \
    a##r = _mm512_dpbf16_ps(a##r, (__m512bh)low, (__m512bh)_mm512_loadu_si512(xr##r));       \
    b##r = _mm512_dpbf16_ps(b##r, (__m512bh)high, (__m512bh)_mm512_loadu_si512(xr##r + 32)); \
  }
  size_t k = 0;
  for (size_t g = 0; g < groups; ++g) {
    const ByteTables t =
        LoadTables<OutputType::kBF16>(tables + g * TableBytes<OutputType::kBF16>());
    for (size_t i = 0; i < group_size; i += kVbmiChunk, k += kVbmiChunk, packed += 48) {
      __m512i low, high;
      ChunkBF16Words(packed, unpack, t, low, high);
      const uint16_t *xr0 = xb + k, *xr1 = xr0 + K, *xr2 = xr1 + K, *xr3 = xr2 + K;
      const uint16_t *xr4 = xr3 + K, *xr5 = xr4 + K, *xr6 = xr5 + K, *xr7 = xr6 + K;
      // clang-format off
      Q6BIT_ROW_DOT(0)
      Q6BIT_ROW_DOT(1)
      Q6BIT_ROW_DOT(2)
      Q6BIT_ROW_DOT(3)
      Q6BIT_ROW_DOT(4)
      Q6BIT_ROW_DOT(5)
      Q6BIT_ROW_DOT(6)
      Q6BIT_ROW_DOT(7)
      // clang-format on
    }
  }
#undef Q6BIT_ROW_DOT
#define Q6BIT_ROW_SUM(r)                                               \
  if constexpr (kRows > r) {                                           \
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(a##r, b##r)); \
    y[r * ldy] = accumulate ? y[r * ldy] + sum : sum;                  \
  }
  // clang-format off
  Q6BIT_ROW_SUM(0)
  Q6BIT_ROW_SUM(1)
  Q6BIT_ROW_SUM(2)
  Q6BIT_ROW_SUM(3)
  Q6BIT_ROW_SUM(4)
  Q6BIT_ROW_SUM(5)
  Q6BIT_ROW_SUM(6)
  Q6BIT_ROW_SUM(7)
  // clang-format on
#undef Q6BIT_ROW_SUM
}

// Rows [0, kRows) of x against `groups` groups of one packed weight row
// (group_size a multiple of kVbmiChunk), whose tables are `tables`:
// y[r * ldy] = sum_k w[k] x[r * K + k] in fp32, added to y[r * ldy] if
// `accumulate`.
template <OutputType kWeight, size_t kRows>
HWY_INLINE void DotPackedRowVbmi(const uint8_t* HWY_RESTRICT packed,
                                 const uint8_t* HWY_RESTRICT tables, size_t group_size,
                                 size_t groups, const float* HWY_RESTRICT x, size_t K,
                                 bool accumulate, float* HWY_RESTRICT y, size_t ldy) {
  static_assert(kRows >= 1 && kRows <= 8, "rows per pass");
  const hn::ScalableTag<float> df;
  using V = hn::Vec<decltype(df)>;
  const ChunkUnpack unpack = MakeChunkUnpack();
  // Named accumulators, two a row (even and odd vectors).
  V a0 = hn::Zero(df), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  V a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0;
#define Q6BIT_ROW_FMA(r)                                               \
  if constexpr (kRows > r) {                                           \
    a##r = hn::MulAdd(V{f0}, hn::LoadU(df, x + r * K + k), a##r);      \
    b##r = hn::MulAdd(V{f1}, hn::LoadU(df, x + r * K + k + 16), b##r); \
    a##r = hn::MulAdd(V{f2}, hn::LoadU(df, x + r * K + k + 32), a##r); \
    b##r = hn::MulAdd(V{f3}, hn::LoadU(df, x + r * K + k + 48), b##r); \
  }
  size_t k = 0;
  for (size_t g = 0; g < groups; ++g) {
    const ByteTables t = LoadTables<kWeight>(tables + g * TableBytes<kWeight>());
    for (size_t i = 0; i < group_size; i += kVbmiChunk, k += kVbmiChunk, packed += 48) {
      __m512 f0, f1, f2, f3;
      ChunkWeights<kWeight>(packed, unpack, t, f0, f1, f2, f3);
      // clang-format off: one row a line (clang-format is not stable on these)
      Q6BIT_ROW_FMA(0)
      Q6BIT_ROW_FMA(1)
      Q6BIT_ROW_FMA(2)
      Q6BIT_ROW_FMA(3)
      Q6BIT_ROW_FMA(4)
      Q6BIT_ROW_FMA(5)
      Q6BIT_ROW_FMA(6)
      Q6BIT_ROW_FMA(7)
      // clang-format on
    }
  }
#undef Q6BIT_ROW_FMA
#define Q6BIT_ROW_SUM(r)                                                    \
  if constexpr (kRows > r) {                                                \
    const float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(a##r, b##r))); \
    y[r * ldy] = accumulate ? y[r * ldy] + sum : sum;                       \
  }
  // clang-format off
  Q6BIT_ROW_SUM(0)
  Q6BIT_ROW_SUM(1)
  Q6BIT_ROW_SUM(2)
  Q6BIT_ROW_SUM(3)
  Q6BIT_ROW_SUM(4)
  Q6BIT_ROW_SUM(5)
  Q6BIT_ROW_SUM(6)
  Q6BIT_ROW_SUM(7)
  // clang-format on
#undef Q6BIT_ROW_SUM
}

// x as bf16 bits for the vdpbf16ps path, into `xb`: true when every x is a
// bf16 value (so the bits are exact) that is zero or at least 2^-80 in
// magnitude. vdpbf16ps treats subnormal inputs as zero and flushes
// subnormal results; with |x| >= 2^-80 and the weights' |w| >= 2^-24 (fp16
// values), every product and every partial sum is a multiple of 2^-111, so
// a nonzero one is >= 2^-111, never subnormal: the flushing never applies
// and each step is an exact product added with one round to nearest even,
// as an FMA does. Other x (fp16 or fp32 activations, tiny values) take the
// FMA path.
HWY_INLINE bool BF16BitsOfX(const float* HWY_RESTRICT x, size_t count, uint16_t* HWY_RESTRICT xb) {
  const __m512i low_mask = _mm512_set1_epi32(0xFFFF);
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i smallest = _mm512_set1_epi32((127 - 80) << 23);  // 2^-80
  __mmask16 bad = 0;
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512i bits = _mm512_loadu_si512(x + i);
    const __m512i abs = _mm512_and_si512(bits, magnitude);
    bad |= _mm512_test_epi32_mask(bits, low_mask);
    bad |= _mm512_mask_cmplt_epi32_mask(_mm512_test_epi32_mask(abs, abs), abs, smallest);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(xb + i),
                        _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
  }
  bool ok = bad == 0;
  for (; i < count; ++i) {
    uint32_t bits;
    memcpy(&bits, x + i, sizeof(bits));
    const uint32_t abs = bits & 0x7FFFFFFFu;
    ok &= (bits & 0xFFFFu) == 0 && (abs == 0 || abs >= (uint32_t{127 - 80} << 23));
    xb[i] = static_cast<uint16_t>(bits >> 16);
  }
  return ok;
}

// One pass of `rows` rows of bf16 x over a block of one weight row's groups.
Q6BIT_BF16_DOT_ATTR HWY_NOINLINE void DotPassBF16Dot(size_t rows, const uint8_t* packed,
                                                     const uint8_t* tables, size_t group_size,
                                                     size_t groups, const uint16_t* xb, size_t K,
                                                     bool accumulate, float* y, size_t ldy) {
  WithRowCount<8>(rows, [&](auto r) Q6BIT_BF16_DOT_ATTR {
    DotPackedRowBF16Dot<decltype(r)::value>(packed, tables, group_size, groups, xb, K, accumulate,
                                            y, ldy);
  });
}

// x as bf16 bits for bf16 products (vdpbf16ps, AMX) in a buffer of this
// thread's, or null where x does not qualify (BF16BitsOfX).
HWY_INLINE const uint16_t* BF16ProductsX(const float* HWY_RESTRICT x, size_t count) {
  thread_local std::vector<uint16_t> bits;
  if (bits.size() < count) bits.resize(count);
  return BF16BitsOfX(x, count, bits.data()) ? bits.data() : nullptr;
}

// Bytes of x one pass keeps in L1 across the weight rows: the rows of x
// times a block of K. Without blocking, 8 rows of a 4096-wide x (128 KiB)
// stream from L2 once per weight row, which made M = 8 3x slower per weight
// than M = 1. One row of x up to 6144 wide is never blocked.
constexpr size_t kVbmiXBlockBytes = 24 << 10;

// Groups per block at most: their tables (128 or 192 B each) stay in L1 too.
constexpr size_t kVbmiBlockGroups = 64;

// Weight rows per tile: a tile's rows are contiguous in memory, and the
// blocks of K go over one tile at a time, so that blocking reads the
// weights a few KiB apart, not a row apart across the whole row range.
constexpr size_t kVbmiTileRows = 8;

// Rows [row_begin, row_end) of the weight, all M rows of x in passes of up
// to 8, each pass over tiles of rows and each tile over K in blocks of
// whole groups (partial sums added to y in fp32: another order of the same
// sums). `xb`, where not null, is x as bf16 bits (BF16ProductsX, bf16
// weights only): then vdpbf16ps takes the products, fp32 FMAs otherwise.
template <OutputType kWeight>
void LinearRowsVbmi(const float* HWY_RESTRICT x, const uint16_t* HWY_RESTRICT xb, size_t M,
                    size_t K, const uint8_t* HWY_RESTRICT qweight,
                    const int8_t* HWY_RESTRICT zero_point, const uint16_t* HWY_RESTRICT scales_f16,
                    size_t group_size, size_t row_begin, size_t row_end, float* HWY_RESTRICT y,
                    size_t ldy) {
  const size_t groups = K / group_size;
  const size_t group_bytes = PackedBytesPerGroup(group_size);
  const size_t row_bytes = groups * group_bytes;
  HWY_ALIGN uint8_t tables[kVbmiBlockGroups * TableBytes<kWeight>()];
  const bool native = kWeight == OutputType::kBF16 && CpuExtensionUsable(CpuExtension::kFP16Tables);
  const size_t x_bytes = xb != nullptr ? sizeof(uint16_t) : sizeof(float);
  for (size_t m = 0; m < M; m += 8) {
    const size_t rows = std::min<size_t>(8, M - m);
    const size_t block =
        std::clamp<size_t>(kVbmiXBlockBytes / (rows * x_bytes * group_size), 1, kVbmiBlockGroups);
    for (size_t n0 = row_begin; n0 < row_end; n0 += kVbmiTileRows) {
      const size_t n1 = std::min(n0 + kVbmiTileRows, row_end);
      for (size_t g0 = 0; g0 < groups; g0 += block) {
        const size_t gn = std::min(block, groups - g0);
        const size_t offset = m * K + g0 * group_size;
        for (size_t n = n0; n < n1; ++n) {
          const uint8_t* packed = qweight + n * row_bytes + g0 * group_bytes;
          const int8_t* zp = zero_point + n * groups + g0;
          const uint16_t* scale = scales_f16 + n * groups + g0;
          float* ym = y + m * ldy + n;
          if constexpr (kWeight == OutputType::kBF16) {
            BuildBF16Tables(native, zp, scale, gn, tables);
          } else {
            BuildTables<kWeight>(zp, scale, gn, tables);
          }
          if (xb != nullptr) {
            DotPassBF16Dot(rows, packed, tables, group_size, gn, xb + offset, K, g0 > 0, ym, ldy);
            continue;
          }
          WithRowCount<8>(rows, [&](auto r) HWY_ATTR {
            DotPackedRowVbmi<kWeight, decltype(r)::value>(packed, tables, group_size, gn,
                                                          x + offset, K, g0 > 0, ym, ldy);
          });
        }
      }
    }
  }
}

#endif  // Q6BIT_HAVE_VBMI_LINEAR

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
