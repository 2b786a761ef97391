// Tuning of q6bit.linear (csrc/linear_op.cpp), settable from Python
// (q6bit._C.linear_config / set_linear_config) for tests and benchmarks.
#ifndef Q6BIT_CSRC_LINEAR_OP_H_
#define Q6BIT_CSRC_LINEAR_OP_H_

#include <stdint.h>

namespace q6bit {

struct LinearConfig {
  // Batches of at most this many rows of x (M) take the packed GEMV path;
  // larger ones dequantize tiles of W and multiply them with torch's GEMM.
  int64_t gemv_max_m;
  // Bytes of one dequantized tile of W (in x's dtype) on the tiled path.
  int64_t tile_bytes;
};

LinearConfig GetLinearConfig();
// Not thread-safe against running ops; values < 0 keep the current one.
void SetLinearConfig(int64_t gemv_max_m, int64_t tile_bytes);

}  // namespace q6bit

#endif  // Q6BIT_CSRC_LINEAR_OP_H_
