// Scalar golden model of the q6bit format for the kernel tests. Written
// independently of the kernels: unpacking follows the byte formulas of the
// format spec literally, and rounding to fp16 uses exact double arithmetic
// with nearbyint (round-half-even) instead of bit tricks.
#ifndef Q6BIT_TESTS_CPP_GOLDEN_H_
#define Q6BIT_TESTS_CPP_GOLDEN_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace q6bit_golden {

// Code `index` (0..3) of the triplet b0 b1 b2, as the spec states it.
inline uint8_t Code(const uint8_t* triplet, size_t index) {
  const unsigned b0 = triplet[0], b1 = triplet[1], b2 = triplet[2];
  switch (index) {
    case 0:
      return b0 & 63;
    case 1:
      return ((b1 & 15) << 2) | (b0 >> 6);
    case 2:
      return ((b2 & 3) << 4) | (b1 >> 4);
    default:
      return b2 >> 2;
  }
}

// Code i of a packed group.
inline uint8_t CodeAt(const uint8_t* packed_group, size_t i) {
  return Code(packed_group + i / 4 * 3, i % 4);
}

// Value of fp16 bits as a double (exact).
inline double F16ToDouble(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 31;
  const int mantissa = h & 1023;
  if (exponent == 31) return mantissa ? NAN : sign * INFINITY;
  if (exponent == 0) return sign * ldexp(mantissa, -24);
  return sign * ldexp(1024 + mantissa, exponent - 25);
}

// fp16 bits nearest to x, ties to even (finite x and inf; NaN -> 0x7E00
// with x's sign, unused by Dequantize, which handles NaN itself).
inline uint16_t F16FromDouble(double x) {
  const uint16_t sign = signbit(x) ? 0x8000 : 0;
  if (isnan(x)) return sign | 0x7E00;
  const double a = fabs(x);
  if (isinf(a)) return sign | 0x7C00;
  int e2;
  frexp(a, &e2);                                   // a = m * 2^e2, m in [0.5, 1)
  int exponent = e2 - 1;                           // floor(log2(a)) for a > 0
  if (a == 0.0 || exponent < -14) exponent = -14;  // subnormal step 2^-24
  const double step = ldexp(1.0, exponent - 10);
  double n = nearbyint(a / step);  // exact quotient, rounded half-even
  if (n >= 2048) {                 // rounded up into the next binade
    n /= 2;
    exponent += 1;
  }
  if (exponent > 15) return sign | 0x7C00;
  // For exponent -14 the bits are n whether n is subnormal (<1024) or not.
  const unsigned bits = exponent == -14
                            ? static_cast<unsigned>(n)
                            : ((exponent + 15) << 10) | (static_cast<unsigned>(n) - 1024);
  return sign | static_cast<uint16_t>(bits);
}

// fp16 bits of the NaN this CPU's float multiplication makes of inf * 0
// (its "default NaN": 0xFFC00000 on x86, 0x7FC00000 on Arm), converted as
// the hardware does (sign, quiet bit, top payload bits). The reference runs
// on the same CPU, so it gets the same NaN.
inline uint16_t DefaultNaNOfInfTimesZero() {
  volatile float zero = 0.0f;
  const float nan = INFINITY * zero;
  uint32_t bits;
  memcpy(&bits, &nan, sizeof(bits));
  return static_cast<uint16_t>(((bits >> 16) & 0x8000) | 0x7E00 | ((bits >> 13) & 0x3FF));
}

// Dequantized weight bits: RNE(float(code - zero_point) * scale). A NaN
// scale comes out as itself made quiet (multiplication and conversion both
// keep a NaN operand's sign and payload); inf * 0 as the default NaN.
inline uint16_t Dequantize(uint8_t code, int8_t zero_point, uint16_t scale) {
  const int difference = code - zero_point;
  if ((scale & 0x7C00) == 0x7C00) {  // inf or NaN
    if (scale & 0x3FF) return scale | 0x200;
    if (difference == 0) return DefaultNaNOfInfTimesZero();
    return (scale ^ (difference < 0 ? 0x8000 : 0)) & 0xFFFF;
  }
  return F16FromDouble(static_cast<double>(difference) * F16ToDouble(scale));
}

// float bits of fp16 bits, widened exactly (NaN payloads kept).
inline uint32_t F16ToF32Bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  if ((h & 0x7C00) == 0x7C00) return sign | 0x7F800000u | ((h & 0x3FFu) << 13);
  const float f = static_cast<float>(F16ToDouble(h));  // exact
  uint32_t bits;
  memcpy(&bits, &f, sizeof(bits));
  return bits | sign;  // keeps -0
}

// bf16 bits of fp16 bits, rounded to nearest even (an fp16 value is never
// subnormal or out of range in bf16); NaN -> 0x7FC0 as torch's conversion.
inline uint16_t F16ToBF16(uint16_t h) {
  const uint16_t sign = h & 0x8000;
  if ((h & 0x7C00) == 0x7C00) return (h & 0x3FF) ? 0x7FC0 : (sign | 0x7F80);
  const double a = fabs(F16ToDouble(h));
  if (a == 0.0) return sign;
  int e2;
  frexp(a, &e2);
  int exponent = e2 - 1;
  double n = nearbyint(a / ldexp(1.0, exponent - 7));  // 8 significant bits
  if (n >= 256) {
    n /= 2;
    exponent += 1;
  }
  return sign | static_cast<uint16_t>(((exponent + 127) << 7) | (static_cast<unsigned>(n) - 128));
}

}  // namespace q6bit_golden

#endif  // Q6BIT_TESTS_CPP_GOLDEN_H_
