// Per-target conversions of the dequantized float32 product to the output
// types, included once per Highway target (foreach_target):
//   fp16: round to nearest even (the reference's one rounding);
//   fp32: that fp16 value widened exactly;
//   bf16: that fp16 value rounded to nearest even to bf16, NaN -> 0x7FC0,
//         as torch's Half -> BFloat16 conversion does (c10::BFloat16's
//         round_to_nearest_even; checked against torch over every fp16).
// NaN results keep their payload in fp16 and fp32 (the reference's F16C /
// NEON conversions do): a NaN scale s gives the quiet NaN s | 0x200.
//
// Why not always hn::DemoteTo: in Highway 1.0.3 it truncates (and mishandles
// signs, inf, NaN and overflow) wherever it is emulated in software: SSSE3,
// SSE4, EMU128 and SCALAR. It is the correct hardware conversion only with
// F16C (AVX2, AVX3*), AArch64 NEON and SVE, so only those targets use it.

#if defined(Q6BIT_KERNELS_FP16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_FP16_INL_H_
#undef Q6BIT_KERNELS_FP16_INL_H_
#else
#define Q6BIT_KERNELS_FP16_INL_H_
#endif

#include "hwy/highway.h"

#undef Q6BIT_HW_F16_DEMOTE
#if ((HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL) && \
     !defined(HWY_DISABLE_F16C)) ||                                                     \
    (HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64) || HWY_TARGET == HWY_SVE ||            \
    HWY_TARGET == HWY_SVE2 || HWY_TARGET == HWY_SVE_256 || HWY_TARGET == HWY_SVE2_128
#define Q6BIT_HW_F16_DEMOTE 1
#else
#define Q6BIT_HW_F16_DEMOTE 0
#endif

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Integer-only RNE conversion, exact for every float (incl. subnormal
// results, overflow to inf, inf; NaN keeps sign and the top 10 payload bits
// and is made quiet, exactly as F16C's and NEON's conversions do). Returns
// the fp16 bits in the low 16 bits of each i32 lane.
// Relies only on the FPU's default round-to-nearest mode for the subnormal
// case, as the float32 multiplication before it does.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> F32ToF16BitsI32Software(DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(di, v);
  const auto sign_mask = hn::Set(di, static_cast<int32_t>(0x80000000u));
  const auto sign16 =
      hn::BitCast(di, hn::ShiftRight<16>(hn::BitCast(du, hn::And(bits, sign_mask))));
  const auto abs = hn::AndNot(sign_mask, bits);  // as a non-negative int

  // Normal results: rebias the exponent (127 -> 15) and round the 23-bit
  // mantissa to 10 bits: add 0xFFF plus the lowest kept bit, then drop 13.
  const auto lowest_kept = hn::And(hn::ShiftRight<13>(abs), hn::Set(di, 1));
  const auto normal =
      hn::ShiftRight<13>(hn::Add(hn::Add(abs, hn::Set(di, -(112 << 23) + 0xFFF)), lowest_kept));

  // Subnormal results (|v| < 2^-14): adding 0.5f makes the FPU round |v| to a
  // multiple of 2^-24, the fp16 subnormal step; the low bits are the result.
  const auto half = hn::Set(di, 126 << 23);  // 0.5f
  const auto subnormal =
      hn::Sub(hn::BitCast(di, hn::Add(hn::BitCast(df, abs), hn::BitCast(df, half))), half);

  const auto kMinNormal = hn::Set(di, 113 << 23);  // 2^-14
  const auto kOverflow = hn::Set(di, 143 << 23);   // 2^16: inf or NaN
  const auto kInf32 = hn::Set(di, 0x7F800000);
  const auto nan =
      hn::Or(hn::Set(di, 0x7E00), hn::And(hn::ShiftRight<13>(abs), hn::Set(di, 0x3FF)));
  const auto special = hn::IfThenElse(hn::Gt(abs, kInf32), nan, hn::Set(di, 0x7C00));
  auto magnitude = hn::IfThenElse(hn::Lt(abs, kMinNormal), subnormal, normal);
  magnitude = hn::IfThenElse(hn::Lt(abs, kOverflow), magnitude, special);
  return hn::Or(magnitude, sign16);
}

// Exact widening of fp16 bits (low 16 bits of i32 lanes) to float, NaN
// payloads kept. Subnormals go through an exact int -> float conversion
// instead of a denormal float, so flush-to-zero modes cannot change them.
template <class DF>
HWY_INLINE hn::Vec<DF> F16BitsI32ToF32Software(DF df, hn::Vec<hn::RebindToSigned<DF>> h) {
  const hn::RebindToSigned<DF> di;
  const auto sign = hn::ShiftLeft<16>(hn::And(h, hn::Set(di, 0x8000)));
  const auto exponent = hn::And(h, hn::Set(di, 0x7C00));
  const auto mantissa = hn::And(h, hn::Set(di, 0x3FF));
  // Normal: rebias 15 -> 127; inf / NaN: exponent 255, payload kept.
  const auto shifted = hn::ShiftLeft<13>(hn::And(h, hn::Set(di, 0x7FFF)));
  const auto normal = hn::Add(shifted, hn::Set(di, 112 << 23));
  const auto special = hn::Or(shifted, hn::Set(di, 0x7F800000));
  const auto subnormal =
      hn::BitCast(di, hn::Mul(hn::ConvertTo(df, mantissa), hn::Set(df, 5.9604644775390625e-8f)));
  auto magnitude = hn::IfThenElse(hn::Eq(exponent, hn::Zero(di)), subnormal, normal);
  magnitude = hn::IfThenElse(hn::Eq(exponent, hn::Set(di, 0x7C00)), special, magnitude);
  return hn::BitCast(df, hn::Or(magnitude, sign));
}

// fp16 bits of v, rounded to nearest even, on every target.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> F32ToF16Bits(DF df, hn::Vec<DF> v) {
#if Q6BIT_HW_F16_DEMOTE
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::BitCast(hn::Rebind<uint16_t, DF>(), hn::DemoteTo(df16, v));
#else
  return hn::DemoteTo(hn::Rebind<uint16_t, DF>(), F32ToF16BitsI32Software(df, v));
#endif
}

// v rounded to the nearest fp16 (ties to even), as a float: the fp32 output.
template <class DF>
HWY_INLINE hn::Vec<DF> RoundToF16(DF df, hn::Vec<DF> v) {
#if Q6BIT_HW_F16_DEMOTE
  // Exact both ways; the fp16 NaN is already quiet, so widening keeps it.
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::DemoteTo(df16, v));
#else
  return F16BitsI32ToF32Software(df, F32ToF16BitsI32Software(df, v));
#endif
}

// bf16 bits of a float, rounded to nearest even; every NaN -> 0x7FC0 (as
// c10::BFloat16 does). Integer ops on every target: Highway 1.0.3's
// DemoteTo to bf16 truncates, and AVX512_BF16's conversion keeps payloads.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> F32ToBF16Bits(DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(du, v);
  const auto lowest_kept = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  // No overflow into the sign: an fp16 value is far below bf16's maximum.
  const auto rounded =
      hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lowest_kept)));
  const auto result =
      hn::IfThenElse(hn::RebindMask(du, hn::Eq(v, v)), rounded, hn::Set(du, 0x7FC0u));
  // Lanes hold 0..0xFFFF: the signed-to-unsigned demotion never saturates.
  return hn::DemoteTo(hn::Rebind<uint16_t, DF>(), hn::BitCast(di, result));
}

// v rounded to nearest even to bf16, as a float (the value F32ToBF16Bits
// gives, widened) for every non-NaN v; a NaN stays some NaN. For the packed
// matmul (kernels/linear-inl.h), where any NaN weight makes the sum NaN.
template <class DF>
HWY_INLINE hn::Vec<DF> RoundToBF16(DF df, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(du, v);
  const auto lowest_kept = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lowest_kept));
  // A NaN stays v: rounding 0x7FFFC000 (the fp16 NaN 0x7FFE widened) would
  // carry into the sign and give -0 (tests/cpp/linear_test.cc, one-hot x).
  return hn::IfThenElse(hn::Eq(v, v), hn::BitCast(df, hn::And(rounded, hn::Set(du, 0xFFFF0000u))),
                        v);
}

// v rounded to nearest to 24 - kDrop significant bits by Veltkamp's
// splitting, c = v * (2^kDrop + 1), v' = c - (c - v): three fp32 operations
// where RoundToF16 and RoundToBF16 take F16C conversions and integer ops.
// It is RoundToF16(v) with kDrop = 13 for v = (code - zp) * s, s a scale
// that SplitRoundsExactly accepts, and RoundToBF16(h) with kDrop = 16 for
// every finite fp16 value h, signed zeros included: checked exhaustively
// (every fp16 s x every code - zp) in float32 numpy, and on each target by
// tests/cpp/linear_test.cc's one-hot test (scales of every exponent). Needs
// the products and differences rounded one at a time: the kernels build
// with -ffp-contract=off, so no compiler fuses them into an FMA.
template <int kDrop, class DF>
HWY_INLINE hn::Vec<DF> SplitRound(DF df, hn::Vec<DF> v) {
  const auto c = hn::Mul(v, hn::Set(df, static_cast<float>((1 << kDrop) + 1)));
  return hn::Sub(c, hn::Sub(c, v));
}

// SplitRound<13>'s multiplier, for callers that fold it into their scale.
constexpr float kSplitF16 = static_cast<float>((1 << 13) + 1);

// Whether (code - zp) * s is a normal fp16 or zero, never above fp16's
// range, for every code 0..63 and zero point -128..127 (|code - zp| <=
// 191): then SplitRound<13> rounds it exactly as RoundToF16. False for NaN.
constexpr float kSplitMinScale = 6.103515625e-5f;  // 2^-14
constexpr float kMaxCodeMinusZeroPoint = 191.0f;
constexpr float kF16Max = 65504.0f;

HWY_INLINE bool SplitRoundsExactly(float scale) {
  const float magnitude = scale < 0 ? -scale : scale;
  return magnitude >= kSplitMinScale && magnitude * kMaxCodeMinusZeroPoint < kF16Max;
}

// SplitRoundsExactly lane by lane (false for NaN: ordered compares).
template <class DF>
HWY_INLINE hn::Mask<DF> SplitRoundsExactly(DF df, hn::Vec<DF> scale) {
  const auto magnitude = hn::Abs(scale);
  return hn::And(magnitude >= hn::Set(df, kSplitMinScale),
                 magnitude * hn::Set(df, kMaxCodeMinusZeroPoint) < hn::Set(df, kF16Max));
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_FP16_INL_H_
