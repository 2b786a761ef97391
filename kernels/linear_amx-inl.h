// The packed matmul's decode path on CPUs with AMX-BF16 (Sapphire Rapids
// and later), for bf16 weights and bf16 x: included once per target by
// kernels/linear-inl.h, empty except on AVX3_DL (whose VBMI word tables,
// kernels/linear_tables-inl.h, make the weights).
//
// Why: with fp32 FMAs (or vdpbf16ps) every row of x costs vector ops per
// 64 weights, so M = 8 decodes at a third of M = 1's speed, far from the
// memory bound. A tile multiply (tdpbf16ps) takes 16 weight rows x 32 k
// against all M <= 16 rows of x at once; what is left per 64 weights is
// the table lookup (5 shuffles) and two stores.
//
// Layout: A = 16 weight rows x 32 bf16 weights (two tiles per chunk of 64
// codes, its even and its odd k, as ChunkBF16Words makes them), B = x in
// AMX's pair ("VNNI") layout, 16 pairs of k x M rows, of x in the order
// BF16ProductsX gives it (each 64 values' even k, then their odd k: pair p
// of A's row meets pair p of B's column), C = 16 weight rows x M fp32 sums
// (two tiles, one per half of each chunk, added at the end).
//
// Exactness: tdpbf16ps adds exact bf16 products into fp32 with round to
// nearest even, treating subnormal inputs as zero and flushing subnormal
// results: the same conditions as vdpbf16ps, so it takes only x that
// BF16BitsOfX passes (|x| >= 2^-80 or 0), for which no product and no
// partial sum is subnormal. The result is within the same fp32 bound.
//
// Linux lends a process the tile registers only once asked
// (arch_prctl(ARCH_REQ_XCOMP_PERM)): kernels/linear.cc asks before it says
// kAmx is usable.

#if defined(Q6BIT_KERNELS_LINEAR_AMX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_AMX_INL_H_
#undef Q6BIT_KERNELS_LINEAR_AMX_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_AMX_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "hwy/highway.h"
#include "kernels/linear_bf16dot-inl.h"
#include "kernels/linear_chunks-inl.h"
#include "kernels/linear_tables-inl.h"
#include "kernels/q6bit_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {

#if Q6BIT_HAVE_VBMI_LINEAR

#define Q6BIT_AMX_ATTR __attribute__((target(HWY_TARGET_STR ",amx-tile,amx-bf16")))

// Weight rows per tile multiply (A's and C's rows; AMX's maximum).
constexpr size_t kAmxRows = 16;
// Rows of x per pass (B's and C's columns of 4 bytes: 64 at most).
constexpr size_t kAmxMaxM = 16;

// How far ahead (4 chunks) to prefetch each of the 16 weight rows: the
// hardware prefetchers do not keep 16 streams 3 KiB apart fed. Measured
// on the 16-core host (GEMV probe, M = 8): 41-42 G weights/s without,
// 61-69 with 384 bytes, 47-60 with 768; later (2026-12-03, 491 M weights,
// 16 threads) 192 vs 384: M = 4 81-91 vs 73-77, M = 8 76-98 vs 73-85 at
// K = 4096, 77-80 vs 76-77 at K = 12288; on the 2-core Intel box (2
// threads, M = 8) 15.9-16.1 vs 14.7.
constexpr size_t kAmxPrefetchBytes = 192;

// The tile configuration (palette 1): C0, C1 = tiles 0, 1; A0, A1 = 2, 3;
// B0, B1 = 4, 5.
struct alignas(64) AmxConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

HWY_INLINE AmxConfig MakeAmxConfig(size_t m) {
  AmxConfig c;
  const uint16_t x_bytes = static_cast<uint16_t>(4 * m);  // one fp32 or one bf16 pair per row of x
  for (int t : {0, 1, 4, 5}) c.colsb[t] = x_bytes;
  for (int t : {2, 3}) c.colsb[t] = 64;  // 32 bf16 weights
  for (int t = 0; t < 6; ++t) c.rows[t] = kAmxRows;
  return c;
}

// Rows [m0, m0 + m) of bf16 x ([M][K] bits) in pair layout: 32-bit word
// p * m + r = x[m0 + r][2p, 2p + 1].
HWY_INLINE void PairLayoutOfX(const uint16_t* HWY_RESTRICT xb, size_t K, size_t m0, size_t m,
                              uint32_t* HWY_RESTRICT pairs) {
  for (size_t r = 0; r < m; ++r) {
    const uint16_t* row = xb + (m0 + r) * K;
    for (size_t p = 0; p < K / 2; ++p) {
      uint32_t word;
      memcpy(&word, row + 2 * p, sizeof(word));
      pairs[p * m + r] = word;
    }
  }
}

// Rows [row_begin, row_end) of the bf16 weight against all M rows of bf16
// x (`xb`, BF16ProductsX), 16 weight rows and up to 16 rows of x per tile
// multiply; group_size a multiple of 64.
Q6BIT_AMX_ATTR HWY_NOINLINE void LinearRowsAmx(const uint16_t* HWY_RESTRICT xb, size_t M, size_t K,
                                               const uint8_t* HWY_RESTRICT qweight,
                                               const int8_t* HWY_RESTRICT zero_point,
                                               const uint16_t* HWY_RESTRICT scales_f16,
                                               size_t group_size, size_t row_begin, size_t row_end,
                                               float* HWY_RESTRICT y, size_t ldy) {
  constexpr OutputType kBF16 = OutputType::kBF16;
  const size_t groups = K / group_size;
  const size_t group_bytes = PackedBytesPerGroup(group_size);
  const size_t row_bytes = groups * group_bytes;
  const BF16TableBuilder builder = ChooseBF16TableBuilder();
  const ChunkUnpack unpack = MakeChunkUnpackWords();
  HWY_ALIGN uint8_t tables[kAmxRows * TableBytes<kBF16>()];
  // A's two tiles, in two sets used in turn, so that one chunk's stores
  // need not wait for the tile loads of the one before. Rows past a short
  // last tile keep what they held: their C rows are not read.
  HWY_ALIGN uint8_t a_tiles[2][2][kAmxRows * 64] = {};
  HWY_ALIGN float c0[kAmxRows * kAmxMaxM], c1[kAmxRows * kAmxMaxM];
  thread_local std::vector<uint32_t> pairs;
  if (pairs.size() < kAmxMaxM * K / 2) pairs.resize(kAmxMaxM * K / 2);
  for (size_t m0 = 0; m0 < M; m0 += kAmxMaxM) {
    const size_t m = std::min(kAmxMaxM, M - m0);
    PairLayoutOfX(xb, K, m0, m, pairs.data());
    const AmxConfig config = MakeAmxConfig(m);
    _tile_loadconfig(&config);
    const size_t b_stride = 4 * m;  // bytes per pair of k
    for (size_t n0 = row_begin; n0 < row_end; n0 += kAmxRows) {
      const size_t rows = std::min(kAmxRows, row_end - n0);
      _tile_zero(0);
      _tile_zero(1);
      for (size_t g = 0; g < groups; ++g) {
        BuildBF16Tables(builder, zero_point + n0 * groups + g, scales_f16 + n0 * groups + g, rows,
                        tables, groups);
        for (size_t i = 0; i < group_size; i += kVbmiChunk) {
          const size_t k = g * group_size + i;
          uint8_t* a0 = a_tiles[k / kVbmiChunk % 2][0];
          uint8_t* a1 = a_tiles[k / kVbmiChunk % 2][1];
          const uint8_t* packed = qweight + n0 * row_bytes + g * group_bytes + i / kVbmiChunk * 48;
          for (size_t r = 0; r < rows; ++r, packed += row_bytes) {
            _mm_prefetch(reinterpret_cast<const char*>(packed) + kAmxPrefetchBytes, _MM_HINT_T0);
            __m512i even, odd;
            ChunkBF16Words(packed, unpack, LoadTables<kBF16>(tables + r * TableBytes<kBF16>()),
                           even, odd);
            _mm512_store_si512(a0 + r * 64, even);
            _mm512_store_si512(a1 + r * 64, odd);
          }
          const uint32_t* b = pairs.data() + k / 2 * m;
          _tile_loadd(2, a0, 64);
          _tile_loadd(3, a1, 64);
          _tile_loadd(4, b, b_stride);
          _tile_loadd(5, b + 16 * m, b_stride);
          _tile_dpbf16ps(0, 2, 4);
          _tile_dpbf16ps(1, 3, 5);
        }
      }
      _tile_stored(0, c0, b_stride);
      _tile_stored(1, c1, b_stride);
      for (size_t r = 0; r < rows; ++r) {
        for (size_t j = 0; j < m; ++j) {
          y[(m0 + j) * ldy + n0 + r] = c0[r * m + j] + c1[r * m + j];
        }
      }
    }
    _tile_release();
  }
}

#endif  // Q6BIT_HAVE_VBMI_LINEAR

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_AMX_INL_H_
