// The weight tables of the packed matmul's decode path on AVX-512 VBMI
// (Highway's AVX3_DL target: Ice Lake, Sapphire Rapids, Zen 4 and later),
// and the decode of 64 codes through them; included once per target by
// kernels/linear_vbmi-inl.h, empty on every other target.
//
// Why a table: a group has one zero point and one scale, so its weights take
// at most 64 values, one per 6-bit code. Computing those 64 values with the
// dequantizer's own code (DequantizeCodesToF32: the fp16 RNE of
// (code - zp) * scale, then the bf16 RNE for bf16 activations) and looking
// each weight up costs one permute per table per 32 or 64 weights, instead
// of ~14 vector ops per 16 weights (convert, multiply, two fp16
// conversions, the bf16 rounding). The weights are the same bits: each one
// IS its code's table entry. The tables of a block of groups are built into
// an L1 buffer first (BuildTables), by Highway code, or on CPUs with
// AVX512_FP16 and AVX512_BF16 by native fp16 multiplies (~5x fewer
// instructions; BuildBF16TablesNative says why the bits are the same).
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

// Codes per chunk: one 512-bit vector of code bytes.
constexpr size_t kVbmiChunk = 64;

// How far ahead of each chunk to prefetch the weight row: with all 16
// cores of the 16-core host streaming, the GEMV probe at M = 1 ran at
// 49-52 G weights/s without, 57-60 with 1024 bytes (256: 50-54; 4096:
// 55-57). The FMA and vdpbf16ps passes use it.
constexpr size_t kVbmiPrefetchBytes = 1024;

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
// dequantizer computes each weight (DequantizeCodesToF32 on codes 0..63).
template <OutputType kWeight>
HWY_INLINE Tables<kWeight> GroupTables(int8_t zero_point, uint16_t scale_f16) {
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

Q6BIT_NATIVE_TABLES_ATTR HWY_NOINLINE void BuildBF16TablesNative(
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
// vcvtps2ph's round to nearest even fp16 (what the dequantizer's own
// RoundToF16 does on this target, subnormals included), widened exactly,
// and vcvtne2ps2bf16 (as in BuildBF16TablesNative) instead of the integer
// bf16 rounding and the word permutes: ~20 instructions for 64 weights
// instead of ~50. On the Zen 5 box (GEMV probe, M = 1, fp32 FMAs) this
// took 18.2 -> 25.0 G weights/s on 2 threads out of cache, 10.5 -> 14.0 on
// one in cache.
#define Q6BIT_F16C_TABLES_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))

Q6BIT_F16C_TABLES_ATTR HWY_NOINLINE void BuildBF16TablesF16C(
    const int8_t* HWY_RESTRICT zero_point, const uint16_t* HWY_RESTRICT scales_f16, size_t groups,
    uint8_t* HWY_RESTRICT tables, size_t stride = 1) {
  HWY_ALIGN static constexpr float kCodes[16] = {0, 1, 2,  3,  4,  5,  6,  7,
                                                 8, 9, 10, 11, 12, 13, 14, 15};
  const __m512 codes0 = _mm512_load_ps(kCodes);
  const __m512 codes1 = _mm512_add_ps(codes0, _mm512_set1_ps(16.0f));
  const __m512 codes2 = _mm512_add_ps(codes0, _mm512_set1_ps(32.0f));
  const __m512 codes3 = _mm512_add_ps(codes0, _mm512_set1_ps(48.0f));
  for (size_t g = 0; g < groups; ++g, tables += TableBytes<OutputType::kBF16>()) {
    const __m512 zp = _mm512_set1_ps(static_cast<float>(zero_point[g * stride]));
    const __m512 scale =
        _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(scales_f16[g * stride])));
    const auto f16 = [&](__m512 codes) Q6BIT_F16C_TABLES_ATTR {
      const __m512 product = _mm512_mul_ps(_mm512_sub_ps(codes, zp), scale);
      return _mm512_cvtph_ps(
          _mm512_cvtps_ph(product, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    };
    const __m512i low = (__m512i)_mm512_cvtne2ps_pbh(f16(codes1), f16(codes0));
    const __m512i high = (__m512i)_mm512_cvtne2ps_pbh(f16(codes3), f16(codes2));
    StoreTables(WordTables{low, high}, tables);
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

// Constants of a chunk's codes: vpermb `spread` puts two 3-byte triplets (8
// codes) into each 64-bit word, and vpmultishiftqb `shifts` moves each code
// to its own byte (byte r of a word: the 8 bits from bit 6r; the top two are
// left over, and lookups read only the low 6 bits of an index).
struct ChunkUnpack {
  __m512i spread, shifts;
};

// Word q (0..7) holds triplets A, B at bytes 0..2, 3..5.
#define Q6BIT_WORD(a, b) 3 * (a), 3 * (a) + 1, 3 * (a) + 2, 3 * (b), 3 * (b) + 1, 3 * (b) + 2, 0, 0

HWY_INLINE __m512i ChunkShifts() {
  HWY_ALIGN static constexpr uint8_t kShifts[64] = {
      0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30,
      36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18,
      24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42, 0,  6,  12, 18, 24, 30, 36, 42};
  return _mm512_load_si512(kShifts);
}

// For ChunkFloats on byte tables: its byte unpacks give vector j (0..3), block L (0..3),
// lane i the code at byte 16L + 4j + i, and that must be code 16j + 4L + i
// (triplet 4j + L): so word 2L holds triplets L, 4 + L and word 2L + 1
// triplets 8 + L, 12 + L.
HWY_INLINE ChunkUnpack MakeChunkUnpack() {
  // clang-format off
  HWY_ALIGN static constexpr uint8_t kSpread[64] = {
      Q6BIT_WORD(0, 4), Q6BIT_WORD(8, 12), Q6BIT_WORD(1, 5), Q6BIT_WORD(9, 13),
      Q6BIT_WORD(2, 6), Q6BIT_WORD(10, 14), Q6BIT_WORD(3, 7), Q6BIT_WORD(11, 15)};
  // clang-format on
  return {_mm512_load_si512(kSpread), ChunkShifts()};
}

// For ChunkBF16Words: the codes in k order, byte b = code b (word q holds
// triplets 2q, 2q + 1).
HWY_INLINE ChunkUnpack MakeChunkUnpackWords() {
  // clang-format off
  HWY_ALIGN static constexpr uint8_t kSpread[64] = {
      Q6BIT_WORD(0, 1), Q6BIT_WORD(2, 3), Q6BIT_WORD(4, 5), Q6BIT_WORD(6, 7),
      Q6BIT_WORD(8, 9), Q6BIT_WORD(10, 11), Q6BIT_WORD(12, 13), Q6BIT_WORD(14, 15)};
  // clang-format on
  return {_mm512_load_si512(kSpread), ChunkShifts()};
}
#undef Q6BIT_WORD

// The 64 codes of the chunk at `packed` (48 bytes, all read, none past),
// one a byte, in the order of `unpack`.
HWY_INLINE __m512i ChunkCodes(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack) {
  const __m512i raw = _mm512_maskz_loadu_epi8((__mmask64{1} << 48) - 1, packed);
  return _mm512_multishift_epi64_epi8(unpack.shifts, _mm512_permutexvar_epi8(unpack.spread, raw));
}

// The weights of a chunk as 4 vectors of floats, in the order each kind of
// table gives them (the x order DotPackedRowVbmi needs). From byte tables:
// the 64 fp32 weights (fp16 values widened) in k order, weights 16j..16j+15
// in f_j (unpack: MakeChunkUnpack).
HWY_INLINE void ChunkFloats(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                            const ByteTables& t, __m512& f0, __m512& f1, __m512& f2, __m512& f3) {
  const __m512i codes = ChunkCodes(packed, unpack);
  const __m512i b1 = _mm512_permutexvar_epi8(codes, t.b1);
  const __m512i b2 = _mm512_permutexvar_epi8(codes, t.b2);
  const __m512i b3 = _mm512_permutexvar_epi8(codes, t.b3);
  const __m512i high_a = _mm512_unpacklo_epi8(b2, b3);  // bytes 2, 3 of 16L + 0..7
  const __m512i high_b = _mm512_unpackhi_epi8(b2, b3);  // of 16L + 8..15
  const __m512i low_a = _mm512_unpacklo_epi8(_mm512_setzero_si512(), b1);
  const __m512i low_b = _mm512_unpackhi_epi8(_mm512_setzero_si512(), b1);
  f0 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low_a, high_a));
  f1 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low_a, high_a));
  f2 = _mm512_castsi512_ps(_mm512_unpacklo_epi16(low_b, high_b));
  f3 = _mm512_castsi512_ps(_mm512_unpackhi_epi16(low_b, high_b));
}

// The 64 bf16 weights of a chunk (unpack: MakeChunkUnpackWords) as words:
// word j of `even` is weight 2j, word j of `odd` weight 2j + 1. A word's
// index is its low 6 bits: the code itself for the even codes, the next
// byte's code once shifted down for the odd ones.
HWY_INLINE void ChunkBF16Words(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                               const WordTables& t, __m512i& even, __m512i& odd) {
  const __m512i codes = ChunkCodes(packed, unpack);
  even = _mm512_permutex2var_epi16(t.low, codes, t.high);
  odd = _mm512_permutex2var_epi16(t.low, _mm512_srli_epi16(codes, 8), t.high);
}

// From word tables: the 64 bf16 weights of ChunkBF16Words as floats (a
// bf16 word << 16 is its float, exactly), by shifts and masks rather than
// byte unpacks (those share one port with the lookups): f0 holds weights
// 4i, f1 4i + 2, f2 4i + 1, f3 4i + 3 (i = 0..15). FmaOrderOfX puts x in
// that order.
HWY_INLINE void ChunkFloats(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                            const WordTables& t, __m512& f0, __m512& f1, __m512& f2, __m512& f3) {
  __m512i even, odd;
  ChunkBF16Words(packed, unpack, t, even, odd);
  const __m512i top = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  f0 = _mm512_castsi512_ps(_mm512_slli_epi32(even, 16));
  f1 = _mm512_castsi512_ps(_mm512_and_si512(even, top));
  f2 = _mm512_castsi512_ps(_mm512_slli_epi32(odd, 16));
  f3 = _mm512_castsi512_ps(_mm512_and_si512(odd, top));
}

template <OutputType kWeight>
HWY_INLINE ChunkUnpack MakeChunkUnpackFor() {
  return kWeight == OutputType::kBF16 ? MakeChunkUnpackWords() : MakeChunkUnpack();
}

// y[r * ldy] = the sum of a_r's and b_r's lanes (added to y[r * ldy] if
// `accumulate`), for the kRows rows r of a pass: every row pass's ending.
template <size_t kRows>
HWY_INLINE void StoreRowSums(bool accumulate, float* HWY_RESTRICT y, size_t ldy, __m512 a0,
                             __m512 b0, __m512 a1, __m512 b1, __m512 a2, __m512 b2, __m512 a3,
                             __m512 b3, __m512 a4, __m512 b4, __m512 a5, __m512 b5, __m512 a6,
                             __m512 b6, __m512 a7, __m512 b7) {
  const auto put = [&](size_t r, __m512 a, __m512 b) HWY_ATTR {
    const float sum = _mm512_reduce_add_ps(_mm512_add_ps(a, b));
    y[r * ldy] = accumulate ? y[r * ldy] + sum : sum;
  };
  put(0, a0, b0);
  if constexpr (kRows > 1) put(1, a1, b1);
  if constexpr (kRows > 2) put(2, a2, b2);
  if constexpr (kRows > 3) put(3, a3, b3);
  if constexpr (kRows > 4) put(4, a4, b4);
  if constexpr (kRows > 5) put(5, a5, b5);
  if constexpr (kRows > 6) put(6, a6, b6);
  if constexpr (kRows > 7) put(7, a7, b7);
}

#endif  // Q6BIT_HAVE_VBMI_LINEAR

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_TABLES_INL_H_
