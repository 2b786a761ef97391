// The packed matmul's decode path on AVX-512 VBMI (Highway's AVX3_DL
// target: Ice Lake, Sapphire Rapids, Zen 4 and later), included once per
// target by kernels/linear-inl.h; empty on every other target.
//
// Each group's 64 possible weights go into tables (kernels/linear_tables-
// inl.h), and each chunk of 64 codes is looked up there and consumed at
// once by up to 8 rows of x: fp32 FMAs here (DotPackedRowVbmi), or, for bf16
// weights and bf16 x, vdpbf16ps (kernels/linear_bf16dot-inl.h) or AMX tiles
// (kernels/linear_amx-inl.h). Measured on the 16-core host at M = 1, all
// cores busy (BENCHMARKS.md, "Packed linear"): 1.9 G weights/s per core
// decoding each weight, 2.6 with portable tables, 3.3 with native ones.

#if defined(Q6BIT_KERNELS_LINEAR_VBMI_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
#undef Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_VBMI_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <vector>

#include "hwy/highway.h"
#include "kernels/linear_bf16dot-inl.h"
#include "kernels/linear_chunks-inl.h"
#include "kernels/linear_rows-inl.h"
#include "kernels/linear_tables-inl.h"
#include "kernels/q6bit_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {

#if Q6BIT_HAVE_VBMI_LINEAR

// x for fp32 FMAs on bf16 table weights, each 64 values in the order
// ChunkFloats gives word-table weights: k = 4i, then 4i + 2, 4i + 1, 4i + 3
// (i = 0..15), in a buffer of this thread's. `count` is a multiple of 64.
HWY_INLINE const float* FmaOrderOfX(const float* HWY_RESTRICT x, size_t count) {
  thread_local std::vector<float> out;
  if (out.size() < count) out.resize(count);
  // Of the 32 floats a:b, k = 0 mod 4 then 2 mod 4; 1 mod 4 then 3 mod 4.
  HWY_ALIGN static constexpr int32_t kEven[16] = {0, 4, 8,  12, 16, 20, 24, 28,
                                                  2, 6, 10, 14, 18, 22, 26, 30};
  const __m512i even = _mm512_load_si512(kEven);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  float* HWY_RESTRICT o = out.data();
  for (size_t i = 0; i < count; i += 64) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    const __m512 c = _mm512_loadu_ps(x + i + 32), d = _mm512_loadu_ps(x + i + 48);
    const __m512 ab_even = _mm512_permutex2var_ps(a, even, b);
    const __m512 cd_even = _mm512_permutex2var_ps(c, even, d);
    const __m512 ab_odd = _mm512_permutex2var_ps(a, odd, b);
    const __m512 cd_odd = _mm512_permutex2var_ps(c, odd, d);
    _mm512_storeu_ps(o + i, _mm512_shuffle_f32x4(ab_even, cd_even, 0x44));
    _mm512_storeu_ps(o + i + 16, _mm512_shuffle_f32x4(ab_even, cd_even, 0xEE));
    _mm512_storeu_ps(o + i + 32, _mm512_shuffle_f32x4(ab_odd, cd_odd, 0x44));
    _mm512_storeu_ps(o + i + 48, _mm512_shuffle_f32x4(ab_odd, cd_odd, 0xEE));
  }
  return o;
}

// Rows [0, kRows) of x against `groups` groups of one packed weight row
// (group_size a multiple of kVbmiChunk), whose tables are `tables`, x in
// the order ChunkFloats gives the weights (FmaOrderOfX for bf16 weights):
// y[r * ldy] = sum_k w[k] x[r * K + k] in fp32, added to y[r * ldy] if
// `accumulate`, prefetching `ahead` bytes on from each chunk into L1 and
// `far` bytes on into L2.
template <OutputType kWeight, size_t kRows>
HWY_INLINE void DotPackedRowVbmi(const uint8_t* HWY_RESTRICT packed,
                                 const uint8_t* HWY_RESTRICT tables, size_t group_size,
                                 size_t groups, const float* HWY_RESTRICT x, size_t K,
                                 bool accumulate, float* HWY_RESTRICT y, size_t ldy, size_t ahead,
                                 size_t far) {
  static_assert(kRows >= 1 && kRows <= 8, "rows per pass");
  const ChunkUnpack unpack = MakeChunkUnpackFor<kWeight>();
  // Named accumulators, two a row (even and odd vectors), and for up to 4
  // rows two more (c, d), so that each takes one FMA per chunk rather than
  // two in a row (FMA latency; on the Zen 5 box, one core in cache, M = 1
  // and 2 ran ~12% faster).
  constexpr bool kFour = kRows <= 4;
  __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  __m512 a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0;
  __m512 c0 = a0, d0 = a0, c1 = a0, d1 = a0, c2 = a0, d2 = a0, c3 = a0, d3 = a0;
  // Rows 4..7 never use theirs (kFour is false there); they are named so
  // that the one macro compiles for every row.
  __m512 c4 = a0, d4 = a0, c5 = a0, d5 = a0, c6 = a0, d6 = a0, c7 = a0, d7 = a0;
#define Q6BIT_ROW_FMA(r)                                                     \
  if constexpr (kRows > r) {                                                 \
    a##r = _mm512_fmadd_ps(f0, _mm512_loadu_ps(x + r * K + k), a##r);        \
    b##r = _mm512_fmadd_ps(f1, _mm512_loadu_ps(x + r * K + k + 16), b##r);   \
    if constexpr (kFour) {                                                   \
      c##r = _mm512_fmadd_ps(f2, _mm512_loadu_ps(x + r * K + k + 32), c##r); \
      d##r = _mm512_fmadd_ps(f3, _mm512_loadu_ps(x + r * K + k + 48), d##r); \
    } else {                                                                 \
      a##r = _mm512_fmadd_ps(f2, _mm512_loadu_ps(x + r * K + k + 32), a##r); \
      b##r = _mm512_fmadd_ps(f3, _mm512_loadu_ps(x + r * K + k + 48), b##r); \
    }                                                                        \
  }
  size_t k = 0;
  for (size_t g = 0; g < groups; ++g) {
    const Tables<kWeight> t = LoadTables<kWeight>(tables + g * TableBytes<kWeight>());
    for (size_t i = 0; i < group_size; i += kVbmiChunk, k += kVbmiChunk, packed += 48) {
      __m512 f0, f1, f2, f3;
      _mm_prefetch(reinterpret_cast<const char*>(packed) + ahead, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(packed) + far, _MM_HINT_T1);
      ChunkFloats(packed, unpack, t, f0, f1, f2, f3);
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
  if constexpr (kFour) {
    a0 = _mm512_add_ps(a0, c0), b0 = _mm512_add_ps(b0, d0), a1 = _mm512_add_ps(a1, c1);
    b1 = _mm512_add_ps(b1, d1), a2 = _mm512_add_ps(a2, c2), b2 = _mm512_add_ps(b2, d2);
    a3 = _mm512_add_ps(a3, c3), b3 = _mm512_add_ps(b3, d3);
  }
  StoreRowSums<kRows>(accumulate, y, ldy, a0, b0, a1, b1, a2, b2, a3, b3, a4, b4, a5, b5, a6, b6,
                      a7, b7);
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

// Rows of x from which the vdpbf16ps passes take two weight rows at once
// (DotPackedRowPairBF16Dot). On the Zen 5 box, 2 threads, weights in DRAM,
// K = 2048, G weights/s one row / two rows a pass: M = 2 33.7 / 33.9,
// M = 3 19.0 / 26.6, M = 4 14.3 / 25.3, M = 8 11.3 / 17.9 (K = 6144: M = 4
// 13.3 / 26.6, M = 8 10.7 / 17.5).
constexpr size_t kBF16DotPairMinRows = 3;

// Rows of x up to which the vdpbf16ps passes build each group's tables as
// they reach it (BF16GroupTables; kernels/linear_bf16dot-inl.h says why).
constexpr size_t kFusedTablesMaxRows = 2;

// Rows [row_begin, row_end) of the weight, all M rows of x in passes of up
// to 8, each pass over tiles of rows and each tile over K in blocks of
// whole groups (partial sums added to y in fp32: another order of the same
// sums). `xb`, where not null, is x as bf16 bits (BF16ProductsX, bf16
// weights only): then vdpbf16ps takes the products, fp32 FMAs otherwise.
// K is a multiple of 64 (of group_size).
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
  HWY_ALIGN uint8_t pair_tables[kVbmiBlockGroups * TableBytes<kWeight>()];  // the next row's
  BF16GroupTables widened[2];  // the F16C builder's (the vdpbf16ps passes)
  static_assert(kVbmiBlockGroups <= kBF16GroupTablesMax, "a block's groups");
  const BF16TableBuilder builder = ChooseBF16TableBuilder();
  const size_t x_bytes = xb != nullptr ? sizeof(uint16_t) : sizeof(float);
  if (kWeight == OutputType::kBF16 && xb == nullptr) x = FmaOrderOfX(x, M * K);
  for (size_t m = 0; m < M; m += 8) {
    const size_t rows = std::min<size_t>(8, M - m);
    const size_t block =
        std::clamp<size_t>(kVbmiXBlockBytes / (rows * x_bytes * group_size), 1, kVbmiBlockGroups);
    for (size_t n0 = row_begin; n0 < row_end; n0 += kVbmiTileRows) {
      const size_t n1 = std::min(n0 + kVbmiTileRows, row_end);
      for (size_t g0 = 0; g0 < groups; g0 += block) {
        const size_t gn = std::min(block, groups - g0);
        const size_t offset = m * K + g0 * group_size;
        for (size_t n = n0, step; n < n1; n += step) {
          const bool pair = kWeight == OutputType::kBF16 && xb != nullptr &&
                            rows >= kBF16DotPairMinRows && n + 1 < n1;
          step = pair ? 2 : 1;
          const uint8_t* packed = qweight + n * row_bytes + g0 * group_bytes;
          const int8_t* zp = zero_point + n * groups + g0;
          const uint16_t* scale = scales_f16 + n * groups + g0;
          float* ym = y + m * ldy + n;
          // Each chunk prefetches `ahead` bytes on: a pass over whole rows
          // kVbmiPrefetchBytes (the rows are contiguous), others the same
          // bytes of the next rows (the next pass, or past the tile's last
          // rows the next tile's). A pass over part of a row (K in blocks)
          // would otherwise prefetch the row's next block, read passes
          // later: on the Zen 5 box, M = 1, K = 12288 (blocks of 8192), 19
          // G weights/s, 30 with the next row's block; M = 8, K = 2048
          // (blocks of 1536 and 512), two rows a pass, 14.6 prefetching the
          // tile's first rows' next block after its last, 18.2 the next
          // tile's rows. A whole row: K = 6144, M = 1, 31 with 1024 bytes,
          // 28.5 a row (4608 bytes) ahead.
          const bool whole_rows = step == 1 && gn == groups;
          const size_t ahead = whole_rows ? kVbmiPrefetchBytes : step * row_bytes;
          // The fp32 FMA passes over whole rows also ask L2 for the bytes
          // kVbmiFarPrefetchBytes on (others: the same line again). GEMV
          // probe, 491 M weights, G weights/s without / with: on the 2-core
          // Intel box (AMX), 2 threads, M = 1 17.1-17.5 / 21.8-22.7 at K =
          // 2048, 18.7 / 20.3-20.5 at K = 6144, M = 2 16.7 / 19.2-19.5 (K =
          // 2048); on the 16-core host, 16 threads, the same within its
          // noise (M = 1: 58-82 / 51-71 at K = 4096, 59-79 / 62-91 at K =
          // 12288). The vdpbf16ps passes (AMD's bf16 path) were not
          // measured with it and go without.
          const size_t far = whole_rows ? kVbmiFarPrefetchBytes : ahead;
          if (kWeight == OutputType::kBF16 && xb != nullptr) {
            // vdpbf16ps passes: tables built as they go where the F16C
            // builder makes them and the rows of x leave the registers for
            // it, else ahead.
            const auto run = [&](auto tables0, auto tables1) HWY_ATTR {
              if (pair) {
                DotPairPassBF16Dot(rows, packed, packed + row_bytes, tables0, tables1, group_size,
                                   gn, xb + offset, K, g0 > 0, ym, ldy, ahead);
              } else {
                DotPassBF16Dot(rows, packed, tables0, group_size, gn, xb + offset, K, g0 > 0, ym,
                               ldy, ahead);
              }
            };
            if (builder == BF16TableBuilder::kF16C && rows <= kFusedTablesMaxRows) {
              widened[0].Widen(zp, scale, gn);
              if (pair) widened[1].Widen(zp + groups, scale + groups, gn);
              run(WidenedTables{&widened[0]}, WidenedTables{&widened[1]});
            } else {
              BuildBF16Tables(builder, zp, scale, gn, tables);
              if (pair) BuildBF16Tables(builder, zp + groups, scale + groups, gn, pair_tables);
              run(BuiltTables{tables}, BuiltTables{pair_tables});
            }
            continue;
          }
          if constexpr (kWeight == OutputType::kBF16) {
            BuildBF16Tables(builder, zp, scale, gn, tables);
          } else {
            BuildTables<kWeight>(zp, scale, gn, tables);
          }
          WithRowCount<8>(rows, [&](auto r) HWY_ATTR {
            DotPackedRowVbmi<kWeight, decltype(r)::value>(
                packed, tables, group_size, gn, x + offset, K, g0 > 0, ym, ldy, ahead, far);
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
