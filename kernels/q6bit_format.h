// The q6bit packed format, stated once for every C++ layer (kernels, tests,
// torch op). The Python twin is q6bit/format.py; tests check they agree.
//
// A group of G 6-bit codes (G a multiple of 4) is stored as 3*G/4 bytes:
// every 3 bytes b0 b1 b2 hold 4 codes as one little-endian 24-bit field,
//   v0 = b0 & 63, v1 = (b1 & 15) << 2 | b0 >> 6,
//   v2 = (b2 & 3) << 4 | b1 >> 4, v3 = b2 >> 2.
// Each group has one int8 zero point and one fp16 scale; the weight is
//   w = fp16_round_to_nearest_even(float(v - zero_point) * float(scale)).
#ifndef Q6BIT_KERNELS_Q6BIT_FORMAT_H_
#define Q6BIT_KERNELS_Q6BIT_FORMAT_H_

#include <stddef.h>
#include <stdint.h>

namespace q6bit {

constexpr size_t kCodeBits = 6;
constexpr size_t kCodesPerTriplet = 4;  // codes in one 3-byte triplet
constexpr size_t kBytesPerTriplet = 3;
constexpr uint32_t kCodeMask = (1u << kCodeBits) - 1;

// A group size is valid when it is a positive multiple of 4.
constexpr bool IsValidGroupSize(size_t group_size) {
  return group_size > 0 && group_size % kCodesPerTriplet == 0;
}

// Packed bytes per group of `group_size` codes.
constexpr size_t PackedBytesPerGroup(size_t group_size) {
  return group_size / kCodesPerTriplet * kBytesPerTriplet;
}

// Codes of one 3-byte triplet, read from its 24-bit little-endian value.
constexpr uint8_t CodeOfTriplet(uint32_t triplet24, size_t index) {
  return static_cast<uint8_t>((triplet24 >> (kCodeBits * index)) & kCodeMask);
}

}  // namespace q6bit

#endif  // Q6BIT_KERNELS_Q6BIT_FORMAT_H_
