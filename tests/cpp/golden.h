// Scalar golden model of the q6bit format for the kernel tests. Written
// independently of the kernels: unpacking follows the byte formulas of the
// format spec literally, and rounding to fp16 uses exact double arithmetic
// with nearbyint (round-half-even) instead of bit tricks.
#ifndef Q6BIT_TESTS_CPP_GOLDEN_H_
#define Q6BIT_TESTS_CPP_GOLDEN_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>

namespace q6bit_golden {

// Code `index` (0..3) of the triplet b0 b1 b2, as the spec states it.
inline uint8_t Code(const uint8_t* triplet, size_t index) {
  const unsigned b0 = triplet[0], b1 = triplet[1], b2 = triplet[2];
  switch (index) {
    case 0: return b0 & 63;
    case 1: return ((b1 & 15) << 2) | (b0 >> 6);
    case 2: return ((b2 & 3) << 4) | (b1 >> 4);
    default: return b2 >> 2;
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

// fp16 bits nearest to x, ties to even; NaN -> 0x7E00 with x's sign.
inline uint16_t F16FromDouble(double x) {
  const uint16_t sign = signbit(x) ? 0x8000 : 0;
  if (isnan(x)) return sign | 0x7E00;
  const double a = fabs(x);
  if (isinf(a)) return sign | 0x7C00;
  int e2;
  frexp(a, &e2);              // a = m * 2^e2, m in [0.5, 1)
  int exponent = e2 - 1;      // floor(log2(a)) for a > 0
  if (a == 0.0 || exponent < -14) exponent = -14;  // subnormal step 2^-24
  const double step = ldexp(1.0, exponent - 10);
  double n = nearbyint(a / step);  // exact quotient, rounded half-even
  if (n >= 2048) {                 // rounded up into the next binade
    n /= 2;
    exponent += 1;
  }
  if (exponent > 15) return sign | 0x7C00;
  // For exponent -14 the bits are n whether n is subnormal (<1024) or not.
  const unsigned bits =
      exponent == -14 ? static_cast<unsigned>(n)
                      : ((exponent + 15) << 10) | (static_cast<unsigned>(n) - 1024);
  return sign | static_cast<uint16_t>(bits);
}

// Dequantized weight bits: RNE(float(code - zero_point) * scale).
inline uint16_t Dequantize(uint8_t code, int8_t zero_point, uint16_t scale) {
  return F16FromDouble(static_cast<double>(code - zero_point) * F16ToDouble(scale));
}

}  // namespace q6bit_golden

#endif  // Q6BIT_TESTS_CPP_GOLDEN_H_
