// Scalar fp16 helpers shared by the kernels (no Highway, no torch).
#ifndef Q6BIT_KERNELS_FP16_H_
#define Q6BIT_KERNELS_FP16_H_

#include <stdint.h>
#include <string.h>

namespace q6bit {

// Exact widening of IEEE binary16 bits to float (every half is a float).
inline float F16BitsToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {  // inf / NaN keep their payload
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    memcpy(&bits, &magnitude, sizeof(bits));
    bits |= sign;
  } else {  // rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace q6bit

#endif  // Q6BIT_KERNELS_FP16_H_
