// Public, torch-free entry points of the q6bit kernels. Each function works on
// a range of quantization groups [group_begin, group_end) so that callers can
// split the work across threads; a group is G codes (3*G/4 packed bytes)
// with one zero point and one scale. All pointers point at group 0 of the
// whole tensor; the functions touch only the groups in the range.
#ifndef Q6BIT_KERNELS_Q6BIT_KERNELS_H_
#define Q6BIT_KERNELS_Q6BIT_KERNELS_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

namespace q6bit {

// Element type of a dequantized output. Every type holds the reference's
// fp16 result, w = fp16 RNE(float(code - zero_point) * float(scale)),
// converted as torch's Half.to(dtype) does:
//   kF16:  w's bits (uint16_t);
//   kBF16: w rounded to nearest even to bfloat16, every NaN -> 0x7FC0
//          (uint16_t bits);
//   kF32:  w widened exactly (float).
enum class OutputType { kF16, kBF16, kF32 };

// Bytes of one output element.
constexpr size_t OutputBytes(OutputType type) { return type == OutputType::kF32 ? 4 : 2; }

// out[g * G + i] = w(g, i) as `type`, for g in [group_begin, group_end),
// i in [0, G); `out` points at elements of `type` (uint16_t or float).
// stream: write with non-temporal stores (bypassing the caches), worth it for
// outputs far larger than the caches; used where the output alignment
// allows, ordinary stores otherwise. Same bits either way.
void DequantizeGroups(const uint8_t* qweight, const int8_t* zero_point, const uint16_t* scales_f16,
                      size_t group_size, size_t group_begin, size_t group_end, void* out,
                      OutputType type = OutputType::kF16, bool stream = false);

// out_codes[g * G + i] = code(g, i) (0..63), for groups in the range.
void UnpackGroups(const uint8_t* qweight, size_t group_size, size_t group_begin, size_t group_end,
                  uint8_t* out_codes);

// Packed matmul for small batches (decode), rows [row_begin, row_end) of
// an [N, K] weight stored as a triple of K / group_size groups per row:
//   y[m * ldy + n] = sum_k x[m * K + k] * W[n, k],  m < M,
// where W[n, k] is the weight DequantizeGroups writes for `weight_type`
// (the reference's fp16 result, as bf16 for kBF16), as a float (a NaN
// weight may come out as another NaN: it makes its sums NaN either way); products
// and sums in fp32 (FMA, in an order of the kernel's choosing). x is
// [M, K] fp32, row-major. Each packed byte of the rows is read once.
void LinearRows(const float* x, size_t m, size_t k, const uint8_t* qweight,
                const int8_t* zero_point, const uint16_t* scales_f16, size_t group_size,
                OutputType weight_type, size_t row_begin, size_t row_end, float* y, size_t ldy);

// x86 instructions beyond Highway 1.0.3's AVX3_DL target that LinearRows
// uses on AVX3_DL where the CPU has them (checked at run time):
//   kFP16Tables: AVX512_FP16 + AVX512_BF16 build the bf16 weight tables
//     (Sapphire Rapids and later);
//   kBF16Tables: AVX512_BF16's conversion builds them where there is no
//     AVX512_FP16 (Zen 4 and 5, Cooper Lake), kFP16Tables taking precedence;
//   kBF16Dot: AVX512_BF16's vdpbf16ps multiplies bf16 weights by bf16 x
//     (Zen 4, Cooper Lake, Sapphire Rapids and later);
//   kAmx: AMX-BF16 tiles multiply 16 bf16 weight rows by up to 16 rows of
//     bf16 x at once (Sapphire Rapids and later; Linux 5.16+ lends the
//     tiles), taking precedence over kBF16Dot.
// Same weights and the same fp32 bound either way.
enum class CpuExtension { kFP16Tables, kBF16Tables, kBF16Dot, kAmx };

// Allows or forbids one (all are allowed by default): tests and benchmarks
// turn them off to run the other code on such a CPU too. Not thread-safe
// against running kernels.
void AllowCpuExtension(CpuExtension extension, bool allowed);

// Allowed and this CPU has it (what the kernels read).
bool CpuExtensionUsable(CpuExtension extension);

// Usable and the dispatched target is AVX3_DL: LinearRows uses it now.
bool CpuExtensionInUse(CpuExtension extension);

// Whether LinearRows looks the weights of groups of 64 up in per-group
// tables on the dispatched target (AVX3_DL: AVX-512 VBMI). Elsewhere it
// decodes each weight in registers, bound by its own instructions (x86
// without VBMI: 0.4-1.9x bf16 F.linear by host and batch; BENCHMARKS.md,
// "without AVX-512 VBMI").
bool LinearUsesTables();

// Rows of x from which LinearRows takes bf16 products by vdpbf16ps
// (kBF16Dot) on this CPU: 1 on AMD's (Zen 4 and 5: two a cycle, and
// cheaper than widening the weights for fp32 FMAs), 4 on others.
size_t BF16DotMinRows();

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
