// Per-target float32 -> fp16 conversion with round-to-nearest-even, included
// once per Highway target (foreach_target).
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
#if ((HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 ||   \
      HWY_TARGET == HWY_AVX3_DL) && !defined(HWY_DISABLE_F16C)) || \
    (HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64) ||            \
    HWY_TARGET == HWY_SVE || HWY_TARGET == HWY_SVE2 ||         \
    HWY_TARGET == HWY_SVE_256 || HWY_TARGET == HWY_SVE2_128
#define Q6BIT_HW_F16_DEMOTE 1
#else
#define Q6BIT_HW_F16_DEMOTE 0
#endif

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Integer-only RNE conversion, exact for every float (incl. subnormal
// results, overflow to inf, inf and NaN -> quiet NaN with the sign kept).
// Relies only on the FPU's default round-to-nearest mode for the subnormal
// case, as the float32 multiplication before it does.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> F32ToF16BitsSoftware(
    DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> du16;
  const auto bits = hn::BitCast(di, v);
  const auto sign_mask = hn::Set(di, static_cast<int32_t>(0x80000000u));
  const auto sign16 = hn::BitCast(
      di, hn::ShiftRight<16>(hn::BitCast(du, hn::And(bits, sign_mask))));
  const auto abs = hn::AndNot(sign_mask, bits);  // as a non-negative int

  // Normal results: rebias the exponent (127 -> 15) and round the 23-bit
  // mantissa to 10 bits: add 0xFFF plus the lowest kept bit, then drop 13.
  const auto lowest_kept = hn::And(hn::ShiftRight<13>(abs), hn::Set(di, 1));
  const auto normal = hn::ShiftRight<13>(hn::Add(
      hn::Add(abs, hn::Set(di, -(112 << 23) + 0xFFF)), lowest_kept));

  // Subnormal results (|v| < 2^-14): adding 0.5f makes the FPU round |v| to a
  // multiple of 2^-24, the fp16 subnormal step; the low bits are the result.
  const auto half = hn::Set(di, 126 << 23);  // 0.5f
  const auto subnormal = hn::Sub(
      hn::BitCast(di, hn::Add(hn::BitCast(df, abs), hn::BitCast(df, half))),
      half);

  const auto kMinNormal = hn::Set(di, 113 << 23);  // 2^-14
  const auto kOverflow = hn::Set(di, 143 << 23);   // 2^16: inf or NaN
  const auto kInf32 = hn::Set(di, 0x7F800000);
  const auto special = hn::IfThenElse(hn::Gt(abs, kInf32),
                                      hn::Set(di, 0x7E00), hn::Set(di, 0x7C00));
  auto magnitude = hn::IfThenElse(hn::Lt(abs, kMinNormal), subnormal, normal);
  magnitude = hn::IfThenElse(hn::Lt(abs, kOverflow), magnitude, special);
  return hn::DemoteTo(du16, hn::Or(magnitude, sign16));
}

// fp16 bits of v, rounded to nearest even, on every target.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> F32ToF16Bits(DF df,
                                                          hn::Vec<DF> v) {
#if Q6BIT_HW_F16_DEMOTE
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::BitCast(hn::Rebind<uint16_t, DF>(), hn::DemoteTo(df16, v));
#else
  return F32ToF16BitsSoftware(df, v);
#endif
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_FP16_INL_H_
