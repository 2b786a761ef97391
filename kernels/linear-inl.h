// Per-target packed matmul for small batches (decode), included once per
// Highway target (foreach_target) by kernels/linear.cc.
//
// Weights come from the dequantizer's own code (kernels/dequant-inl.h), so
// they are the values DequantizeGroups writes, and meet x in fp32 FMAs, a
// few rows of x per pass so that each decoded weight vector feeds several
// accumulators. Two ways, same sums up to their order:
//   groups a multiple of the chunk (4 vectors of codes; G = 128 on every
//     target): each chunk is decoded in registers and consumed at once by
//     up to 8 rows of x; more rows re-decode the row's packed bytes (L1);
//   other groups: the row is decoded once into a row buffer (L1/L2) by
//     DequantizeGroupsImpl, then dotted with x.
// The packed bytes (0.75 + 3/G per weight) are read from memory once per
// call. On AVX3_DL (AVX-512 VBMI) groups that are whole chunks of 64 take
// kernels/linear_vbmi-inl.h instead: each group's 64 possible weights in
// tables, looked up with permutes (~2x fewer instructions per
// weight than decoding each one; BENCHMARKS.md, "Packed linear"); bf16
// weights with bf16 x then multiply in AMX tiles (kernels/linear_amx-inl.h)
// or with vdpbf16ps where the CPU has them.

#if defined(Q6BIT_KERNELS_LINEAR_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_INL_H_
#undef Q6BIT_KERNELS_LINEAR_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"
#include "kernels/dequant-inl.h"
#include "kernels/linear_amx-inl.h"
#include "kernels/linear_rows-inl.h"
#include "kernels/linear_vbmi-inl.h"
#include "kernels/q6bit_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows of x per pass over a decoded weight row: 2 accumulators each (even
// and odd vectors of k), 8 in all, enough to hide the FMA latency.
constexpr size_t kRowsPerPass = 4;

// Element of the decoded row: bf16 weights stay bf16 bits (half the bytes),
// fp16 and fp32 weights are the fp16 value widened exactly to float.
template <OutputType kWeight>
using RowElement = std::conditional_t<kWeight == OutputType::kBF16, uint16_t, float>;

// Lanes(df) decoded weights as floats (bf16 bits widened exactly: << 16).
template <class DF, typename T>
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const T* HWY_RESTRICT w) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, w);
  } else {
    const hn::RebindToUnsigned<DF> du32;
    const hn::Rebind<uint16_t, DF> du16;
    return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, w))));
  }
}

template <typename T>
HWY_INLINE float WeightAt(const T* w, size_t k) {
  if constexpr (std::is_same_v<T, float>) {
    return w[k];
  } else {
    const uint32_t bits = uint32_t{w[k]} << 16;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
  }
}

HWY_INLINE float SumLanes(hn::ScalableTag<float> df, hn::Vec<decltype(df)> v) {
  return hn::GetLane(hn::SumOfLanes(df, v));
}

// y[r * ldy] = sum_k w[k] * x[r * K + k] for the kRows rows r of x, in fp32.
template <size_t kRows, typename T>
HWY_INLINE void DotRows(const T* HWY_RESTRICT w, const float* HWY_RESTRICT x, size_t K,
                        float* HWY_RESTRICT y, size_t ldy) {
  static_assert(kRows >= 1 && kRows <= kRowsPerPass, "rows per pass");
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  // Named accumulators, not an array: SVE vectors are sizeless.
  auto a0 = hn::Zero(df), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  size_t k = 0;
  for (; k + 2 * N <= K; k += 2 * N) {
    const auto w0 = LoadWeights(df, w + k);
    const auto w1 = LoadWeights(df, w + k + N);
    a0 = hn::MulAdd(w0, hn::LoadU(df, x + k), a0);
    b0 = hn::MulAdd(w1, hn::LoadU(df, x + k + N), b0);
    if constexpr (kRows > 1) {
      a1 = hn::MulAdd(w0, hn::LoadU(df, x + K + k), a1);
      b1 = hn::MulAdd(w1, hn::LoadU(df, x + K + k + N), b1);
    }
    if constexpr (kRows > 2) {
      a2 = hn::MulAdd(w0, hn::LoadU(df, x + 2 * K + k), a2);
      b2 = hn::MulAdd(w1, hn::LoadU(df, x + 2 * K + k + N), b2);
    }
    if constexpr (kRows > 3) {
      a3 = hn::MulAdd(w0, hn::LoadU(df, x + 3 * K + k), a3);
      b3 = hn::MulAdd(w1, hn::LoadU(df, x + 3 * K + k + N), b3);
    }
  }
  if (k + N <= K) {
    const auto w0 = LoadWeights(df, w + k);
    a0 = hn::MulAdd(w0, hn::LoadU(df, x + k), a0);
    if constexpr (kRows > 1) a1 = hn::MulAdd(w0, hn::LoadU(df, x + K + k), a1);
    if constexpr (kRows > 2) a2 = hn::MulAdd(w0, hn::LoadU(df, x + 2 * K + k), a2);
    if constexpr (kRows > 3) a3 = hn::MulAdd(w0, hn::LoadU(df, x + 3 * K + k), a3);
    k += N;
  }
  // Fewer than N weights left (K is only a multiple of 4): scalar fp32.
  float tail[kRows] = {};
  for (; k < K; ++k) {
    const float wk = WeightAt(w, k);
    for (size_t r = 0; r < kRows; ++r) tail[r] += wk * x[r * K + k];
  }
  y[0] = SumLanes(df, hn::Add(a0, b0)) + tail[0];
  if constexpr (kRows > 1) y[ldy] = SumLanes(df, hn::Add(a1, b1)) + tail[1];
  if constexpr (kRows > 2) y[2 * ldy] = SumLanes(df, hn::Add(a2, b2)) + tail[2];
  if constexpr (kRows > 3) y[3 * ldy] = SumLanes(df, hn::Add(a3, b3)) + tail[3];
}

// All M rows of x against one decoded weight row: full passes, then the rest.
template <typename T>
HWY_INLINE void DotAllRows(const T* HWY_RESTRICT w, const float* HWY_RESTRICT x, size_t M, size_t K,
                           float* HWY_RESTRICT y, size_t ldy) {
  size_t m = 0;
  for (; m + kRowsPerPass <= M; m += kRowsPerPass) {
    DotRows<kRowsPerPass>(w, x + m * K, K, y + m * ldy, ldy);
  }
  WithRowCount<kRowsPerPass - 1>(M - m, [&](auto r) HWY_ATTR {
    DotRows<decltype(r)::value>(w, x + m * K, K, y + m * ldy, ldy);
  });
}

// Rows of x per pass of the in-register path: the whole decode batch
// (M <= 8) in one pass, so each chunk is decoded once. 2 accumulators per
// row (even and odd vectors), 16 in all: AVX-512 and SVE hold them in
// registers; AVX2 spills a few.
constexpr size_t kRegisterRowsPerPass = 8;

// Vector registers of the target: x86's SSE and AVX2 have 16.
constexpr size_t kVectorRegisters =
    (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4 || HWY_TARGET == HWY_SSSE3) ? 16 : 32;

// The in-register path decodes a chunk's codes straight from its triplets
// (LoadTriplets): vector j holds code j of every triplet, the chunk's
// weights 4i + j, i < N. x comes in that order (ChunkOrderOfX), so each
// vector meets its own x with plain loads, and no byte shuffles put the
// codes back in order (on the AVX2 box, M = 1: 70 instructions a chunk of
// 32 weights before, BENCHMARKS.md).
template <size_t kCode>
HWY_INLINE hn::Vec<hn::RebindToSigned<DU32>> CodeOfTriplets(DU32 du32, hn::Vec<DU32> triplets) {
  const hn::RebindToSigned<DU32> di;
  return hn::BitCast(di, hn::And(hn::ShiftRight<6 * kCode>(triplets), hn::Set(du32, 0x3Fu)));
}

// x's rows, each chunk of 4N floats as LoadInterleaved4 splits it (k = 4i,
// then 4i + 1, 4i + 2, 4i + 3), in a buffer of this thread's. `count` is a
// multiple of 4N.
HWY_INLINE const float* ChunkOrderOfX(const float* HWY_RESTRICT x, size_t count) {
  thread_local std::vector<float> out;
  if (out.size() < count) out.resize(count);
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  float* HWY_RESTRICT o = out.data();
  for (size_t i = 0; i < count; i += 4 * N) {
    hn::Vec<decltype(df)> v0, v1, v2, v3;
    hn::LoadInterleaved4(df, x + i, v0, v1, v2, v3);
    hn::StoreU(v0, df, o + i);
    hn::StoreU(v1, df, o + i + N);
    hn::StoreU(v2, df, o + i + 2 * N);
    hn::StoreU(v3, df, o + i + 3 * N);
  }
  return o;
}

// Rows [0, kRows) of x (in chunk order: ChunkOrderOfX) against one packed
// weight row, decoded chunk by chunk in registers; group_size is a multiple
// of the chunk (4 vectors).
template <OutputType kWeight, size_t kRows>
HWY_INLINE void DotPackedRow(const uint8_t* HWY_RESTRICT packed,
                             const int8_t* HWY_RESTRICT zero_point,
                             const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                             size_t groups, const uint8_t* packed_end, const float* HWY_RESTRICT x,
                             size_t K, float* HWY_RESTRICT y, size_t ldy) {
  static_assert(kRows >= 1 && kRows <= kRegisterRowsPerPass, "rows per pass");
  const DU32 du32;
  const hn::Rebind<float, DU32> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t N = hn::Lanes(df);
  const size_t chunk_bytes = 3 * N;
  HWY_ALIGN uint8_t padded[HWY_MAX_BYTES];
  // Named accumulators, not an array: SVE vectors are sizeless.
  auto a0 = hn::Zero(df), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  auto a4 = a0, b4 = a0, a5 = a0, b5 = a0, a6 = a0, b6 = a0, a7 = a0, b7 = a0;
  // One accumulator a row where two a row would not leave registers for
  // the decode (x86 before AVX-512 has 16): AVX2 spilled at M = 8.
  constexpr bool kOneAccumulator = kRows > 4 && kVectorRegisters < 32;
#define Q6BIT_ROW_FMA(r)                                             \
  if constexpr (kRows > r) {                                         \
    a##r = hn::MulAdd(w0, hn::LoadU(df, x + r * K + k), a##r);       \
    if constexpr (kOneAccumulator) {                                 \
      a##r = hn::MulAdd(w1, hn::LoadU(df, x + r * K + k + N), a##r); \
    } else {                                                         \
      b##r = hn::MulAdd(w1, hn::LoadU(df, x + r * K + k + N), b##r); \
    }                                                                \
  }
  // Two vectors of weights at x's column k, for every row.
  const auto step = [&](hn::Vec<decltype(df)> w0, hn::Vec<decltype(df)> w1, size_t k) HWY_ATTR {
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
  };
#undef Q6BIT_ROW_FMA
  size_t k = 0;
  // One group's chunks, its weights rounded by SplitRound or not (kSplit).
  const auto group = [&](auto split, hn::Vec<decltype(di)> zp,
                         hn::Vec<decltype(df)> scale) HWY_ATTR {
    constexpr bool kSplit = decltype(split)::value;
    for (size_t i = 0; i < group_size; i += 4 * N, k += 4 * N, packed += chunk_bytes) {
      const auto t = LoadTriplets(du32, Readable(packed, chunk_bytes, packed_end, padded));
      step(WeightsOfCodes<kWeight, kSplit>(df, CodeOfTriplets<0>(du32, t), zp, scale),
           WeightsOfCodes<kWeight, kSplit>(df, CodeOfTriplets<1>(du32, t), zp, scale), k);
      step(WeightsOfCodes<kWeight, kSplit>(df, CodeOfTriplets<2>(du32, t), zp, scale),
           WeightsOfCodes<kWeight, kSplit>(df, CodeOfTriplets<3>(du32, t), zp, scale), k + 2 * N);
    }
  };
  for (size_t g = 0; g < groups; ++g) {
    const float scale = F16BitsToF32(scales_f16[g]);
    const auto zp = hn::Set(di, zero_point[g]);
    if (HWY_LIKELY(SplitRoundsExactly(scale))) {
      group(std::true_type(), zp, hn::Set(df, scale));
    } else {
      group(std::false_type(), zp, hn::Set(df, scale));
    }
  }
#define Q6BIT_ROW_SUM(r) \
  if constexpr (kRows > r) y[r * ldy] = SumLanes(df, hn::Add(a##r, b##r));
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

// One pass of `rows` rows of x (1..kRegisterRowsPerPass) over a packed row.
template <OutputType kWeight>
HWY_INLINE void DotPackedRowPass(size_t rows, const uint8_t* packed, const int8_t* zp,
                                 const uint16_t* scale, size_t group_size, size_t groups,
                                 const uint8_t* packed_end, const float* x, size_t K, float* y,
                                 size_t ldy) {
  WithRowCount<kRegisterRowsPerPass>(rows, [&](auto r) HWY_ATTR {
    DotPackedRow<kWeight, decltype(r)::value>(packed, zp, scale, group_size, groups, packed_end, x,
                                              K, y, ldy);
  });
}

// Rows [row_begin, row_end) of the weight in registers (DotPackedRow), all
// M rows of x in passes of kRegisterRowsPerPass.
template <OutputType kWeight>
void LinearRowsInRegisters(const float* HWY_RESTRICT x, size_t M, size_t K,
                           const uint8_t* HWY_RESTRICT qweight,
                           const int8_t* HWY_RESTRICT zero_point,
                           const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                           size_t row_begin, size_t row_end, float* HWY_RESTRICT y, size_t ldy) {
  const size_t groups = K / group_size;
  const size_t row_bytes = groups * PackedBytesPerGroup(group_size);
  // Full-vector loads stay inside the rows of the range.
  const uint8_t* const packed_end = qweight + row_end * row_bytes;
  x = ChunkOrderOfX(x, M * K);
  for (size_t n = row_begin; n < row_end; ++n) {
    const uint8_t* packed = qweight + n * row_bytes;
    const int8_t* zp = zero_point + n * groups;
    const uint16_t* scale = scales_f16 + n * groups;
    for (size_t m = 0; m < M; m += kRegisterRowsPerPass) {
      DotPackedRowPass<kWeight>(std::min(kRegisterRowsPerPass, M - m), packed, zp, scale,
                                group_size, groups, packed_end, x + m * K, K, y + m * ldy + n, ldy);
    }
  }
}

// Rows of x from which the bf16 products beat fp32 FMAs on the table
// weights (the GEMV probe, 16-core host and 2-core box, BENCHMARKS.md):
// AMX 40-44 vs 22-32 G weights/s at M = 4, 43-47 vs 16 at M = 8, but
// 28-39 vs 52-54 at M = 1 (a tile multiply costs the same for 1 row of x
// as for 16) and even at M = 2; vdpbf16ps +15-33% at M = 4 on both Intel
// hosts, even or worse below; on the Zen 5 box (2 threads, out of cache)
// vdpbf16ps was faster from 1 row: 35 vs 41 G weights/s at M = 1, 17.5 vs
// 34 at M = 2 (BF16DotMinRows).
constexpr size_t kAmxMinRows = 3;

template <OutputType kWeight>
void LinearRowsOf(const float* HWY_RESTRICT x, size_t M, size_t K,
                  const uint8_t* HWY_RESTRICT qweight, const int8_t* HWY_RESTRICT zero_point,
                  const uint16_t* HWY_RESTRICT scales_f16, size_t group_size, size_t row_begin,
                  size_t row_end, float* HWY_RESTRICT y, size_t ldy) {
  // The row buffer holds the weights as DequantizeGroups writes them for
  // kWeight: fp16 and fp32 weights both as the fp32 widening of the fp16.
  constexpr OutputType kDecoded = kWeight == OutputType::kBF16 ? kWeight : OutputType::kF32;
  using T = RowElement<kWeight>;
#if Q6BIT_HAVE_VBMI_LINEAR
  if (group_size % kVbmiChunk == 0) {
    // bf16 weights with bf16 x: bf16 products where the CPU has them and
    // they pay, by AMX tiles, else vdpbf16ps (unless BF16ProductsX turns x
    // down); fp32 FMAs otherwise.
    const uint16_t* xb = nullptr;
    if constexpr (kWeight == OutputType::kBF16) {
      const bool amx = M >= kAmxMinRows && CpuExtensionUsable(CpuExtension::kAmx);
      const bool dot = M >= BF16DotMinRows() && CpuExtensionUsable(CpuExtension::kBF16Dot);
      if (amx || dot) xb = BF16ProductsX(x, M * K);
      if (amx && xb != nullptr) {
        return LinearRowsAmx(xb, M, K, qweight, zero_point, scales_f16, group_size, row_begin,
                             row_end, y, ldy);
      }
    }
    return LinearRowsVbmi<kWeight>(x, xb, M, K, qweight, zero_point, scales_f16, group_size,
                                   row_begin, row_end, y, ldy);
  }
#endif
  if (group_size % (4 * hn::Lanes(DU32())) == 0) {
    return LinearRowsInRegisters<kWeight>(x, M, K, qweight, zero_point, scales_f16, group_size,
                                          row_begin, row_end, y, ldy);
  }
  const size_t groups_per_row = K / group_size;
  auto row = hwy::AllocateAligned<T>(K > 0 ? K : 1);
  for (size_t n = row_begin; n < row_end; ++n) {
    DequantizeGroupsImpl<kDecoded, false>(qweight, zero_point, scales_f16, group_size,
                                          n * groups_per_row, (n + 1) * groups_per_row, row.get());
    DotAllRows(row.get(), x, M, K, y + n, ldy);
  }
}

// Whether this target's LinearRows has the AVX3_DL paths that use the
// CpuExtensions (a dispatch, not a name comparison: GemvMaxM asks on every
// q6bit.linear call).
inline bool UsesCpuExtensionsT() { return Q6BIT_HAVE_VBMI_LINEAR != 0; }

inline void LinearRowsT(const float* HWY_RESTRICT x, size_t M, size_t K,
                        const uint8_t* HWY_RESTRICT qweight, const int8_t* HWY_RESTRICT zero_point,
                        const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                        OutputType weight_type, size_t row_begin, size_t row_end,
                        float* HWY_RESTRICT y, size_t ldy) {
  switch (weight_type) {
    case OutputType::kBF16:
      return LinearRowsOf<OutputType::kBF16>(x, M, K, qweight, zero_point, scales_f16, group_size,
                                             row_begin, row_end, y, ldy);
    case OutputType::kF16:
    case OutputType::kF32:
      // Same weight values: an fp16 number is exactly a float.
      return LinearRowsOf<OutputType::kF32>(x, M, K, qweight, zero_point, scales_f16, group_size,
                                            row_begin, row_end, y, ldy);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_INL_H_
