// The decode of a chunk of 64 codes (48 packed bytes) through the weight
// tables of kernels/linear_tables-inl.h, and the row sums every pass of the
// packed matmul's AVX-512 VBMI path ends with; included once per target by
// kernels/linear_vbmi-inl.h, kernels/linear_bf16dot-inl.h and
// kernels/linear_amx-inl.h, empty on every target other than AVX3_DL.

#if defined(Q6BIT_KERNELS_LINEAR_CHUNKS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_CHUNKS_INL_H_
#undef Q6BIT_KERNELS_LINEAR_CHUNKS_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_CHUNKS_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include "hwy/highway.h"
#include "kernels/linear_tables-inl.h"
#include "kernels/q6bit_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {

#if Q6BIT_HAVE_VBMI_LINEAR

// Codes per chunk: one 512-bit vector of code bytes.
constexpr size_t kVbmiChunk = 64;

// How far ahead of each chunk a pass over a whole row prefetches the weight
// rows (contiguous): with all 16 cores of the 16-core host streaming, the
// GEMV probe at M = 1 ran at 49-52 G weights/s without, 57-60 with 1024
// bytes (256: 50-54; 4096: 55-57). Other passes prefetch the next rows'
// bytes instead (LinearRowsVbmi says why).
constexpr size_t kVbmiPrefetchBytes = 1024;
// And into L2 (the fp32 FMA passes: LinearRowsVbmi says why): 2048 bytes
// into L1 instead was as fast on the 2-core box but slower on the 16-core
// host at M = 1 (52-62 vs 65-67 G weights/s, 16 threads).
constexpr size_t kVbmiFarPrefetchBytes = 4096;

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

#endif  // Q6BIT_KERNELS_LINEAR_CHUNKS_INL_H_
