// bf16 products for bf16 weights and bf16 x in the packed matmul's decode
// path (AVX3_DL, kernels/linear_vbmi-inl.h): x as bf16 bits in the order
// the word tables give the weights (BF16ProductsX, shared with the AMX
// tiles of kernels/linear_amx-inl.h), and the vdpbf16ps row pass for CPUs
// with AVX512_BF16 (Zen 4/5, Cooper Lake, Sapphire Rapids and later).
// Included once per target; empty except on AVX3_DL.
//
// Exactness: vdpbf16ps (and AMX's tdpbf16ps) treat subnormal inputs as
// zero and flush subnormal results, whatever MXCSR says, so they take only
// x that BF16BitsOfX passes; see there.

#if defined(Q6BIT_KERNELS_LINEAR_BF16DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_BF16DOT_INL_H_
#undef Q6BIT_KERNELS_LINEAR_BF16DOT_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_BF16DOT_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "hwy/highway.h"
#include "kernels/linear_chunks-inl.h"
#include "kernels/linear_rows-inl.h"
#include "kernels/linear_tables-inl.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {

#if Q6BIT_HAVE_VBMI_LINEAR

// x as bf16 bits into `xb`, each 64 values' even ones first, then their
// odd ones: ChunkBF16Words' even and odd weight words then meet their x
// pair by pair (vdpbf16ps and tdpbf16ps multiply word pairs). True when
// every x is a bf16 value (so the bits are exact) that is zero or at least
// 2^-80 in magnitude: with |x| >= 2^-80 and the weights' |w| >= 2^-24
// (fp16 values), every product and every partial sum is a multiple of
// 2^-111, so a nonzero one is >= 2^-111, never subnormal: the flushing
// never applies and each step is an exact product added with one round to
// nearest even, as an FMA does. Other x (fp16 or fp32 activations, tiny
// values) take the FMA path. `count` is a multiple of 64.
HWY_INLINE bool BF16BitsOfX(const float* HWY_RESTRICT x, size_t count, uint16_t* HWY_RESTRICT xb) {
  const __m512i low_mask = _mm512_set1_epi32(0xFFFF);
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
  const __m512i smallest = _mm512_set1_epi32((127 - 80) << 23);  // 2^-80
  // High words of 32 floats a:b, the even floats' then the odd ones'.
  HWY_ALIGN static constexpr uint16_t kEvenOdd[32] = {1,  5,  9,  13, 17, 21, 25, 29, 33, 37, 41,
                                                      45, 49, 53, 57, 61, 3,  7,  11, 15, 19, 23,
                                                      27, 31, 35, 39, 43, 47, 51, 55, 59, 63};
  const __m512i even_odd = _mm512_load_si512(kEvenOdd);
  __mmask16 bad = 0;
  const auto load = [&](const float* p) HWY_ATTR {
    const __m512i bits = _mm512_loadu_si512(p);
    const __m512i abs = _mm512_and_si512(bits, magnitude);
    bad |= _mm512_test_epi32_mask(bits, low_mask);
    bad |= _mm512_mask_cmplt_epi32_mask(_mm512_test_epi32_mask(abs, abs), abs, smallest);
    return bits;
  };
  for (size_t i = 0; i < count; i += 64) {
    const __m512i a = load(x + i), b = load(x + i + 16), c = load(x + i + 32), d = load(x + i + 48);
    const __m512i ab = _mm512_permutex2var_epi16(a, even_odd, b);
    const __m512i cd = _mm512_permutex2var_epi16(c, even_odd, d);
    _mm512_storeu_si512(xb + i, _mm512_shuffle_i64x2(ab, cd, 0x44));       // evens
    _mm512_storeu_si512(xb + i + 32, _mm512_shuffle_i64x2(ab, cd, 0xEE));  // odds
  }
  return bad == 0;
}

// x as BF16BitsOfX makes it, in a buffer of this thread's, or null where x
// does not qualify.
HWY_INLINE const uint16_t* BF16ProductsX(const float* HWY_RESTRICT x, size_t count) {
  thread_local std::vector<uint16_t> bits;
  if (bits.size() < count) bits.resize(count);
  return BF16BitsOfX(x, count, bits.data()) ? bits.data() : nullptr;
}

#define Q6BIT_BF16_DOT_ATTR __attribute__((target(HWY_TARGET_STR ",avx512bf16")))

// Where a row pass takes each group's word tables: a block's, built ahead
// into a buffer (BuiltTables), or built as the pass reaches the group
// (WidenedTables: BF16GroupTables, the F16C builder's; each of the two is
// one pointer, passed by value). The second lets the core overlap a
// group's table building with the previous group's products: built ahead,
// a block's tables (~10 cycles a group) ran before its pass, whose work
// was out of the core's reach (hundreds of instructions later). It needs
// registers for the building, which passes of many rows of x hold as
// accumulators (kFusedTablesMaxRows).
struct BuiltTables {
  const uint8_t* tables;

  HWY_INLINE WordTables Of(size_t g) const {
    return LoadTables<OutputType::kBF16>(tables + g * TableBytes<OutputType::kBF16>());
  }
};

struct WidenedTables {
  const BF16GroupTables* widened;

  Q6BIT_BF16_DOT_ATTR HWY_INLINE WordTables Of(size_t g) const { return widened->Of(g); }
};

// Rows [0, kRows) of bf16 x (`xb`, BF16ProductsX) against `groups` groups
// of one packed weight row whose word tables `tables` gives, as
// DotPackedRowVbmi (prefetching as it does): vdpbf16ps adds pairs of exact
// products, half the instructions of fp32 FMAs, and the weights need no
// widening.
template <size_t kRows, class Tables>
Q6BIT_BF16_DOT_ATTR HWY_INLINE void DotPackedRowBF16Dot(const uint8_t* HWY_RESTRICT packed,
                                                        Tables tables, size_t group_size,
                                                        size_t groups,
                                                        const uint16_t* HWY_RESTRICT xb, size_t K,
                                                        bool accumulate, float* HWY_RESTRICT y,
                                                        size_t ldy, size_t ahead) {
  static_assert(kRows >= 1 && kRows <= 8, "rows per pass");
  const ChunkUnpack unpack = MakeChunkUnpackWords();
  __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  __m512 a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0;
#define Q6BIT_ROW_DOT(r)                                                                    \
  if constexpr (kRows > r) {                                                                \
    a##r = _mm512_dpbf16_ps(a##r, (__m512bh)even, (__m512bh)_mm512_loadu_si512(xr##r));     \
    b##r = _mm512_dpbf16_ps(b##r, (__m512bh)odd, (__m512bh)_mm512_loadu_si512(xr##r + 32)); \
  }
  size_t k = 0;
  for (size_t g = 0; g < groups; ++g) {
    const WordTables t = tables.Of(g);
    for (size_t i = 0; i < group_size; i += kVbmiChunk, k += kVbmiChunk, packed += 48) {
      __m512i even, odd;
      _mm_prefetch(reinterpret_cast<const char*>(packed) + ahead, _MM_HINT_T0);
      ChunkBF16Words(packed, unpack, t, even, odd);
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
  StoreRowSums<kRows>(accumulate, y, ldy, a0, b0, a1, b1, a2, b2, a3, b3, a4, b4, a5, b5, a6, b6,
                      a7, b7);
}

// DotPackedRowBF16Dot on two adjacent weight rows at once (`packed1`,
// `tables1` the second's; its sums go to y[1 + r * ldy]), so that each x
// vector loaded serves both. On the Zen 5 box, one core, M = 4, one row a
// pass ran at 17.7 G weights/s with the weights in L2 but 7.4 from DRAM;
// with the 4 rows' x loads made one (the same x), 19.9 from DRAM: the x
// loads, not the products, stalled the weight stream (we think by filling
// the load queue, so that fewer weight loads are in flight). Up to 4 rows
// of x each (weight row, x row) keeps an even and an odd accumulator, from
// 5 one (32 registers).
template <size_t kRows, class Tables>
Q6BIT_BF16_DOT_ATTR HWY_INLINE void DotPackedRowPairBF16Dot(
    const uint8_t* HWY_RESTRICT packed0, const uint8_t* HWY_RESTRICT packed1, Tables tables0,
    Tables tables1, size_t group_size, size_t groups, const uint16_t* HWY_RESTRICT xb, size_t K,
    bool accumulate, float* HWY_RESTRICT y, size_t ldy, size_t ahead) {
  static_assert(kRows >= 1 && kRows <= 8, "rows per pass");
  constexpr bool kSplit = kRows <= 4;
  const ChunkUnpack unpack = MakeChunkUnpackWords();
  const __m512 z = _mm512_setzero_ps();
  // p, q: weight row 0's even and odd sums; s, t: row 1's (q, t unused
  // from 5 rows of x).
  __m512 p0 = z, q0 = z, s0 = z, t0 = z, p1 = z, q1 = z, s1 = z, t1 = z;
  __m512 p2 = z, q2 = z, s2 = z, t2 = z, p3 = z, q3 = z, s3 = z, t3 = z;
  __m512 p4 = z, q4 = z, s4 = z, t4 = z, p5 = z, q5 = z, s5 = z, t5 = z;
  __m512 p6 = z, q6 = z, s6 = z, t6 = z, p7 = z, q7 = z, s7 = z, t7 = z;
#define Q6BIT_PAIR_DOT(r)                                                  \
  if constexpr (kRows > r) {                                               \
    const __m512bh xe = (__m512bh)_mm512_loadu_si512(xb + k + r * K);      \
    const __m512bh xo = (__m512bh)_mm512_loadu_si512(xb + k + r * K + 32); \
    p##r = _mm512_dpbf16_ps(p##r, (__m512bh)even0, xe);                    \
    s##r = _mm512_dpbf16_ps(s##r, (__m512bh)even1, xe);                    \
    if constexpr (kSplit) {                                                \
      q##r = _mm512_dpbf16_ps(q##r, (__m512bh)odd0, xo);                   \
      t##r = _mm512_dpbf16_ps(t##r, (__m512bh)odd1, xo);                   \
    } else {                                                               \
      p##r = _mm512_dpbf16_ps(p##r, (__m512bh)odd0, xo);                   \
      s##r = _mm512_dpbf16_ps(s##r, (__m512bh)odd1, xo);                   \
    }                                                                      \
  }
  size_t k = 0;
  for (size_t g = 0; g < groups; ++g) {
    const WordTables w0 = tables0.Of(g);
    const WordTables w1 = tables1.Of(g);
    for (size_t i = 0; i < group_size;
         i += kVbmiChunk, k += kVbmiChunk, packed0 += 48, packed1 += 48) {
      __m512i even0, odd0, even1, odd1;
      _mm_prefetch(reinterpret_cast<const char*>(packed0) + ahead, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(packed1) + ahead, _MM_HINT_T0);
      ChunkBF16Words(packed0, unpack, w0, even0, odd0);
      ChunkBF16Words(packed1, unpack, w1, even1, odd1);
      // clang-format off
      Q6BIT_PAIR_DOT(0)
      Q6BIT_PAIR_DOT(1)
      Q6BIT_PAIR_DOT(2)
      Q6BIT_PAIR_DOT(3)
      Q6BIT_PAIR_DOT(4)
      Q6BIT_PAIR_DOT(5)
      Q6BIT_PAIR_DOT(6)
      Q6BIT_PAIR_DOT(7)
      // clang-format on
    }
  }
#undef Q6BIT_PAIR_DOT
  StoreRowSums<kRows>(accumulate, y, ldy, p0, q0, p1, q1, p2, q2, p3, q3, p4, q4, p5, q5, p6, q6,
                      p7, q7);
  StoreRowSums<kRows>(accumulate, y + 1, ldy, s0, t0, s1, t1, s2, t2, s3, t3, s4, t4, s5, t5, s6,
                      t6, s7, t7);
}

// One pass of `rows` rows of bf16 x over a block of one weight row's groups.
template <class Tables>
Q6BIT_BF16_DOT_ATTR HWY_NOINLINE void DotPassBF16Dot(size_t rows, const uint8_t* packed,
                                                     Tables tables, size_t group_size,
                                                     size_t groups, const uint16_t* xb, size_t K,
                                                     bool accumulate, float* y, size_t ldy,
                                                     size_t ahead) {
  WithRowCount<8>(rows, [&](auto r) Q6BIT_BF16_DOT_ATTR {
    DotPackedRowBF16Dot<decltype(r)::value, Tables>(packed, tables, group_size, groups, xb, K,
                                                    accumulate, y, ldy, ahead);
  });
}

// DotPassBF16Dot on two weight rows (DotPackedRowPairBF16Dot).
template <class Tables>
Q6BIT_BF16_DOT_ATTR HWY_NOINLINE void DotPairPassBF16Dot(size_t rows, const uint8_t* packed0,
                                                         const uint8_t* packed1, Tables tables0,
                                                         Tables tables1, size_t group_size,
                                                         size_t groups, const uint16_t* xb,
                                                         size_t K, bool accumulate, float* y,
                                                         size_t ldy, size_t ahead) {
  WithRowCount<8>(rows, [&](auto r) Q6BIT_BF16_DOT_ATTR {
    DotPackedRowPairBF16Dot<decltype(r)::value, Tables>(
        packed0, packed1, tables0, tables1, group_size, groups, xb, K, accumulate, y, ldy, ahead);
  });
}

#endif  // Q6BIT_HAVE_VBMI_LINEAR

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_BF16DOT_INL_H_
