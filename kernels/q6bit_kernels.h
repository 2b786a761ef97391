// Public, torch-free entry points of the q6bit kernels. Each function works on
// a range of rows [row_begin, row_end) so that callers can split the work
// across threads; a "row" is one quantization group (G codes, 3*G/4 packed
// bytes, one zero point, one scale). All pointers point at row 0 of the whole
// tensor; the functions touch only the rows in the range.
#ifndef Q6BIT_KERNELS_Q6BIT_KERNELS_H_
#define Q6BIT_KERNELS_Q6BIT_KERNELS_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

namespace q6bit {

// out_f16[r * G + i] = fp16 bits of RNE(float(code(r, i) - zero_point[r]) *
// float(scales_f16[r])), for r in [row_begin, row_end), i in [0, G).
// stream: write with non-temporal stores (bypassing the caches), worth it for
// outputs far larger than the caches; used where the output alignment
// allows, ordinary stores otherwise. Same bits either way.
void DequantizeRows(const uint8_t* qweight, const int8_t* zero_point,
                    const uint16_t* scales_f16, size_t group_size,
                    size_t row_begin, size_t row_end, uint16_t* out_f16,
                    bool stream = false);

// out_codes[r * G + i] = code(r, i) (0..63), for rows in the range.
void UnpackRows(const uint8_t* qweight, size_t group_size, size_t row_begin,
                size_t row_end, uint8_t* out_codes);

// Name of the Highway target that dynamic dispatch uses now (e.g. "AVX3_DL").
std::string ActiveTarget();

// Names of the targets compiled into this build that this CPU can run,
// best first.
std::vector<std::string> RunnableTargets();

// Restricts dispatch to the named runnable target ("" restores the best one).
// Returns false (and changes nothing) for a name not in RunnableTargets().
// Meant for tests and benchmarks; not thread-safe against running kernels.
bool ForceTarget(const std::string& name);

}  // namespace q6bit

#endif  // Q6BIT_KERNELS_Q6BIT_KERNELS_H_
