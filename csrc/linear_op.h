// Tuning of q6bit.linear (csrc/linear_op.cpp), settable from Python
// (q6bit._C.linear_config / set_linear_config) for tests and benchmarks.
#ifndef Q6BIT_CSRC_LINEAR_OP_H_
#define Q6BIT_CSRC_LINEAR_OP_H_

#include <c10/core/ScalarType.h>
#include <stdint.h>

#include <optional>

namespace q6bit {

// LinearConfig::gemv_max_m's "chosen per call" value (GemvMaxM).
constexpr int64_t kAutoGemvMaxM = -1;

struct LinearConfig {
  // Batches of at most this many rows of x (M) take the packed GEMV path;
  // larger ones dequantize tiles of W and multiply them with torch's GEMM.
  // kAutoGemvMaxM (the default): by x's dtype and the CPU (GemvMaxM).
  int64_t gemv_max_m;
  // Bytes of one dequantized tile of W (in x's dtype) on the tiled path.
  int64_t tile_bytes;
};

LinearConfig GetLinearConfig();
// Not thread-safe against running ops. A value given sets it (gemv_max_m
// >= 0 or kAutoGemvMaxM, tile_bytes > 0: anything else throws
// std::invalid_argument, nothing changed); nullopt keeps it.
void SetLinearConfig(std::optional<int64_t> gemv_max_m, std::optional<int64_t> tile_bytes);

// The batch threshold that applies to x of `dtype` now: the configured
// one, or by default for bf16 x
//   64 where the kernels use AMX tiles (a tile takes up to 16 rows of x at
//     about the cost of one; Qwen3-8B shapes, GEMV vs tiled ms: on the
//     16-core host 20 vs 61 at M = 16, 36 vs 66 at 32, 52-64 vs 63-69 at
//     48, 67-74 vs 65-73 at 64, 100 vs 76 at 96; on the 2-core Intel box
//     75-80 vs 117-126 at 48, 91 vs 124 at 64, 131 vs 131 at 96),
//   24 where they use vdpbf16ps from one row of x (AMD's CPUs,
//     BF16DotMinRows): passes of 8 rows of x each read the weight again,
//     but cost less than writing the dequantized tile to memory and
//     reading it back (on the Zen 5 box, 2 threads, the GEMV took 42-50 ms
//     at M = 16 and 64 at 24 where the tiled path took 72 and 84; at 32
//     both ~85),
// else 8 (fp32 FMAs, no tables, or vdpbf16ps on Intel without AMX: there
// the tiled path is faster from M = 16). BENCHMARKS.md, "Mid-size batches".
int64_t GemvMaxM(c10::ScalarType dtype);

}  // namespace q6bit

#endif  // Q6BIT_CSRC_LINEAR_OP_H_
