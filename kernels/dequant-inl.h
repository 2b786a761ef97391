// Per-target 6-bit unpack and dequantize kernels, included once per Highway
// target (foreach_target) by kernels/dequant.cc.
//
// Work unit: a "chunk" of one vector of u32 lanes, i.e. 4*N codes read from
// 3*N packed bytes. A chunk never straddles a group, so each group's zero
// point and scale are broadcast; groups whose size is not a multiple of the
// chunk end with a partial chunk that goes through small stack buffers.
// Each chunk's products are rounded to fp16 once (the reference's result) and
// then stored as fp16, bf16 or fp32 (OutputType; kernels/fp16-inl.h).

#if defined(Q6BIT_KERNELS_DEQUANT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_DEQUANT_INL_H_
#undef Q6BIT_KERNELS_DEQUANT_INL_H_
#else
#define Q6BIT_KERNELS_DEQUANT_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernels/fp16-inl.h"
#include "kernels/fp16.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "q6bit kernels assume a little-endian target"
#endif

using DU32 = hn::ScalableTag<uint32_t>;

// Spreads each 3-byte triplet of `packed` into its own u32 lane: code j of
// triplet i (the chunk's code 4i + j) at bits 6j..6j+5 of lane i; bits
// 24..31 are don't-care. Reads Lanes(du32)*4 bytes (uses 3/4 of them).
HWY_INLINE hn::Vec<DU32> LoadTriplets(DU32 du32, const uint8_t* HWY_RESTRICT packed) {
#if HWY_TARGET == HWY_SCALAR
  // One lane: assemble the triplet directly (no byte shuffles on SCALAR).
  const auto triplets =
      hn::Set(du32, packed[0] | (uint32_t{packed[1]} << 8) | (uint32_t{packed[2]} << 16));
#else
  const hn::Repartition<uint8_t, DU32> du8;
  auto words = hn::BitCast(du32, hn::LoadU(du8, packed));
  // Byte shuffles stay inside 128-bit blocks: first move words 3k..3k+2
  // (the 12 bytes that block k needs) into block k.
  if (hn::Lanes(du32) > 4) {
    // clang-format off: 16 words a row, as the 4-word groups of each block
    HWY_ALIGN static constexpr int32_t kWords[64] = {
        0,  1,  2,  2,  3,  4,  5,  5,  6,  7,  8,  8,  9,  10, 11, 11, 12, 13, 14, 14, 15, 16,
        17, 17, 18, 19, 20, 20, 21, 22, 23, 23, 24, 25, 26, 26, 27, 28, 29, 29, 30, 31, 32, 32,
        33, 34, 35, 35, 36, 37, 38, 38, 39, 40, 41, 41, 42, 43, 44, 44, 45, 46, 47, 47};
    // clang-format on
    static_assert(HWY_MAX_BYTES / 4 <= 64, "kWords too short");
    words = hn::TableLookupLanes(words, hn::SetTableIndices(du32, kWords));
  }
  // Then give triplet i of the block the low 3 bytes of u32 lane i; the top
  // byte is don't-care because the callers' masks never read bits 24..31.
  HWY_ALIGN static constexpr uint8_t kBytes[16] = {0, 1, 2, 2, 3, 4,  5,  5,
                                                   6, 7, 8, 8, 9, 10, 11, 11};
  const auto triplets =
      hn::BitCast(du32, hn::TableLookupBytes(hn::BitCast(du8, words), hn::LoadDup128(du8, kBytes)));
#endif
  return triplets;
}

// The chunk's Lanes(du32)*4 codes as one u32 vector of bytes (code j of
// triplet i in byte j of lane i, i.e. the codes in order as bytes).
HWY_INLINE hn::Vec<DU32> UnpackTriplets(DU32 du32, const uint8_t* HWY_RESTRICT packed) {
  const auto triplets = LoadTriplets(du32, packed);
  // Code j sits at bits 6j..6j+5 of the triplet; move it to byte j.
  const auto code0 = hn::And(triplets, hn::Set(du32, 0x3Fu));
  const auto code1 = hn::And(hn::ShiftLeft<2>(triplets), hn::Set(du32, 0x3F00u));
  const auto code2 = hn::And(hn::ShiftLeft<4>(triplets), hn::Set(du32, 0x3F0000u));
  const auto code3 = hn::And(hn::ShiftLeft<6>(triplets), hn::Set(du32, 0x3F000000u));
  return hn::Or(hn::Or(code0, code1), hn::Or(code2, code3));
}

// Writes the Lanes(du32)*4 codes of one chunk as bytes.
HWY_INLINE void UnpackChunk(DU32 du32, const uint8_t* HWY_RESTRICT packed,
                            uint8_t* HWY_RESTRICT codes) {
  const auto four_codes = UnpackTriplets(du32, packed);
#if HWY_TARGET == HWY_SCALAR
  const uint32_t lane = hn::GetLane(four_codes);
  memcpy(codes, &lane, sizeof(lane));
#else
  const hn::Repartition<uint8_t, DU32> du8;
  hn::StoreU(hn::BitCast(du8, four_codes), du8, codes);
#endif
}

// Lanes(df) codes (u8 lanes) dequantized: RNE(float(code - zp) * scale),
// rounded to fp16 once as the reference does, then expressed in the output
// type (kernels/fp16-inl.h): fp16 or bf16 bits as u16 lanes, or floats.
// The subtraction happens before the multiplication: folding it into
// code*scale - zp*scale would turn -0 into +0 and round twice.
template <OutputType kOut, class DF, class V8>
HWY_INLINE auto DequantizeCodes(DF df, V8 codes, hn::Vec<hn::RebindToSigned<DF>> zero_point,
                                hn::Vec<DF> scale) {
  const hn::RebindToSigned<DF> di;
  const auto w = hn::Mul(hn::ConvertTo(df, hn::Sub(hn::PromoteTo(di, codes), zero_point)), scale);
  if constexpr (kOut == OutputType::kF16) {
    return F32ToF16Bits(df, w);
  } else if constexpr (kOut == OutputType::kBF16) {
    return F32ToBF16Bits(df, RoundToF16(df, w));
  } else {
    return RoundToF16(df, w);
  }
}

// The weights of codes (i32 lanes) as floats, kept in registers (the
// packed matmul, kernels/linear-inl.h, and its tables): the fp16 value
// DequantizeCodes<kF16> gives, widened; for bf16 weights that rounded to
// bf16 (a NaN stays a NaN, of unspecified payload). kSplit: the group's
// scale passes SplitRoundsExactly, and each rounding takes three fp32
// operations (SplitRound) instead of F16C conversions and integer ops.
template <OutputType kWeight, bool kSplit, class DF>
HWY_INLINE hn::Vec<DF> WeightsOfCodes(DF df, hn::Vec<hn::RebindToSigned<DF>> codes,
                                      hn::Vec<hn::RebindToSigned<DF>> zero_point,
                                      hn::Vec<DF> scale) {
  const auto w = hn::Mul(hn::ConvertTo(df, hn::Sub(codes, zero_point)), scale);
  const auto h = kSplit ? SplitRound<13>(df, w) : RoundToF16(df, w);
  if constexpr (kWeight == OutputType::kBF16) {
    return kSplit ? SplitRound<16>(df, h) : RoundToBF16(df, h);
  } else {
    return h;
  }
}

// Element type of the output, as the kernels store it.
template <OutputType kOut>
using OutElement = std::conditional_t<kOut == OutputType::kF32, float, uint16_t>;

// Quarter k (of Lanes(df) codes) of a chunk's codes, kept in registers:
// storing the codes and reloading quarters stalls store-to-load forwarding
// on Intel cores. SCALAR has no byte vector of a chunk; it goes through
// memory (4 bytes).
#if HWY_TARGET == HWY_SCALAR
template <size_t kQuarter, class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint8_t, DF>> Quarter(DF, hn::Vec<DU32> four_codes) {
  uint8_t bytes[4];
  const uint32_t lane = hn::GetLane(four_codes);
  memcpy(bytes, &lane, sizeof(lane));
  return hn::Set(hn::Rebind<uint8_t, DF>(), bytes[kQuarter]);
}
#else
template <size_t kQuarter, class DF>
HWY_INLINE auto Quarter(DF, hn::Vec<DU32> four_codes) {
  const hn::Repartition<uint8_t, DF> du8;
  const hn::Half<decltype(du8)> dh;
  const hn::Half<decltype(dh)> dq;
  const auto codes = hn::BitCast(du8, four_codes);
  const auto half = (kQuarter < 2) ? hn::LowerHalf(dh, codes) : hn::UpperHalf(dh, codes);
  return (kQuarter % 2 == 0) ? hn::LowerHalf(dq, half) : hn::UpperHalf(dq, half);
}
#endif

// Dequantizes one chunk (4*Lanes(df) codes, all of one group) from a full
// vector's worth of readable packed bytes into the output type.
// kStream: non-temporal stores of full vectors (out aligned to the vector).
// Highway 1.0.3's Stream of a partial vector writes a whole 128-bit register,
// so 16-bit quarters are combined into full vectors first; fp32 quarters are
// full vectors already.
template <OutputType kOut, bool kStream, class DF>
HWY_INLINE void DequantizeChunk(DF df, const uint8_t* HWY_RESTRICT packed,
                                hn::Vec<hn::RebindToSigned<DF>> zero_point, hn::Vec<DF> scale,
                                OutElement<kOut>* HWY_RESTRICT out) {
  const size_t N = hn::Lanes(df);
  const auto four_codes = UnpackTriplets(DU32(), packed);
  const auto q0 = DequantizeCodes<kOut>(df, Quarter<0>(df, four_codes), zero_point, scale);
  const auto q1 = DequantizeCodes<kOut>(df, Quarter<1>(df, four_codes), zero_point, scale);
  if constexpr (kOut == OutputType::kF32) {
    if (kStream) {
      hn::Stream(q0, df, out);
      hn::Stream(q1, df, out + N);
      hn::Stream(DequantizeCodes<kOut>(df, Quarter<2>(df, four_codes), zero_point, scale), df,
                 out + 2 * N);
      hn::Stream(DequantizeCodes<kOut>(df, Quarter<3>(df, four_codes), zero_point, scale), df,
                 out + 3 * N);
      return;
    }
    hn::StoreU(q0, df, out);
    hn::StoreU(q1, df, out + N);
    hn::StoreU(DequantizeCodes<kOut>(df, Quarter<2>(df, four_codes), zero_point, scale), df,
               out + 2 * N);
    hn::StoreU(DequantizeCodes<kOut>(df, Quarter<3>(df, four_codes), zero_point, scale), df,
               out + 3 * N);
  } else {
    const hn::Rebind<uint16_t, DF> du16;
#if HWY_TARGET != HWY_SCALAR
    if (kStream) {
      const hn::Repartition<uint16_t, DF> du16_full;
      hn::Stream(hn::Combine(du16_full, q1, q0), du16_full, out);
      const auto q2 = DequantizeCodes<kOut>(df, Quarter<2>(df, four_codes), zero_point, scale);
      const auto q3 = DequantizeCodes<kOut>(df, Quarter<3>(df, four_codes), zero_point, scale);
      hn::Stream(hn::Combine(du16_full, q3, q2), du16_full, out + 2 * N);
      return;
    }
#endif
    hn::StoreU(q0, du16, out);
    hn::StoreU(q1, du16, out + N);
    hn::StoreU(DequantizeCodes<kOut>(df, Quarter<2>(df, four_codes), zero_point, scale), du16,
               out + 2 * N);
    hn::StoreU(DequantizeCodes<kOut>(df, Quarter<3>(df, four_codes), zero_point, scale), du16,
               out + 3 * N);
  }
}

// A full vector's worth of readable bytes holding the `packed_bytes` that
// are left, for chunks near the end of the range: `packed` itself when a
// full vector load stays inside, else a zero-padded copy in `buffer`.
HWY_INLINE const uint8_t* Readable(const uint8_t* packed, size_t packed_bytes,
                                   const uint8_t* packed_end, uint8_t* buffer) {
  if (HWY_LIKELY(packed + hn::Lanes(DU32()) * 4 <= packed_end)) {
    return packed;
  }
  memset(buffer, 0, HWY_MAX_BYTES);
  memcpy(buffer, packed, packed_bytes);
  return buffer;
}

// Writes groups [group_begin, group_end) from `output` on (output holds
// group_begin's first weight), weight by weight in registers: every target
// but AVX3_DL's fp16/bf16 table path (kernels/dequant_groups-inl.h). Also
// kernels/linear-inl.h's row decoder.
template <OutputType kOut, bool kStream>
void DequantizeGroupsImpl(const uint8_t* HWY_RESTRICT qweight,
                          const int8_t* HWY_RESTRICT zero_point,
                          const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                          size_t group_begin, size_t group_end,
                          OutElement<kOut>* HWY_RESTRICT output) {
  const DU32 du32;
  const hn::Rebind<float, DU32> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t chunk_codes = 4 * hn::Lanes(du32);
  const size_t chunk_bytes = 3 * hn::Lanes(du32);
  const size_t group_bytes = PackedBytesPerGroup(group_size);
  // Full-vector loads must not read past the last packed byte of the range.
  const uint8_t* const packed_end = qweight + group_end * group_bytes;
  HWY_ALIGN uint8_t padded[HWY_MAX_BYTES];
  HWY_ALIGN OutElement<kOut> partial_out[HWY_MAX_BYTES];  // one chunk's output

  for (size_t group = group_begin; group < group_end; ++group) {
    const uint8_t* packed = qweight + group * group_bytes;
    OutElement<kOut>* out = output + (group - group_begin) * group_size;
    const auto zp = hn::Set(di, zero_point[group]);
    const auto scale = hn::Set(df, F16BitsToF32(scales_f16[group]));
    size_t i = 0;
    for (; i + chunk_codes <= group_size; i += chunk_codes) {
      DequantizeChunk<kOut, kStream>(df, Readable(packed, chunk_bytes, packed_end, padded), zp,
                                     scale, out + i);
      packed += chunk_bytes;
    }
    if (i < group_size) {  // group tail: fewer codes than one chunk
      const size_t rest = group_size - i;
      // Codes past the tail (next group's or padding) are computed, then dropped.
      DequantizeChunk<kOut, false>(df,
                                   Readable(packed, PackedBytesPerGroup(rest), packed_end, padded),
                                   zp, scale, partial_out);
      memcpy(out + i, partial_out, rest * sizeof(OutElement<kOut>));
    }
  }
}

// The entry points DequantizeGroupsOf and DequantizeGroupsT: kernels/
// dequant_groups-inl.h (they take the table path on AVX3_DL).

inline void UnpackGroupsT(const uint8_t* HWY_RESTRICT qweight, size_t group_size,
                          size_t group_begin, size_t group_end, uint8_t* HWY_RESTRICT out_codes) {
  // Unpacking ignores group boundaries: the groups' codes form one stream.
  const DU32 du32;
  const size_t chunk_codes = 4 * hn::Lanes(du32);
  const size_t chunk_bytes = 3 * hn::Lanes(du32);
  const size_t total_codes = (group_end - group_begin) * group_size;
  const uint8_t* packed = qweight + group_begin * PackedBytesPerGroup(group_size);
  const uint8_t* const packed_end = packed + PackedBytesPerGroup(total_codes);
  uint8_t* out = out_codes + group_begin * group_size;
  HWY_ALIGN uint8_t padded[HWY_MAX_BYTES];
  HWY_ALIGN uint8_t partial_out[HWY_MAX_BYTES];

  size_t i = 0;
  for (; i + chunk_codes <= total_codes; i += chunk_codes) {
    UnpackChunk(du32, Readable(packed, chunk_bytes, packed_end, padded), out + i);
    packed += chunk_bytes;
  }
  if (i < total_codes) {
    const size_t rest = total_codes - i;
    UnpackChunk(du32, Readable(packed, PackedBytesPerGroup(rest), packed_end, padded), partial_out);
    memcpy(out + i, partial_out, rest);
  }
}

// Name of the target this code was compiled for (for dispatch reports).
inline const char* TargetNameT() { return hwy::TargetName(HWY_TARGET); }

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_DEQUANT_INL_H_
