// Input validation shared by the q6bit ops (CPU and Meta).
#ifndef Q6BIT_CSRC_VALIDATE_H_
#define Q6BIT_CSRC_VALIDATE_H_

#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "kernels/q6bit_kernels.h"

namespace q6bit {

// Shape facts of one packed tensor [..., n_groups, 3*G/4].
struct PackedLayout {
  int64_t num_groups;                // number of groups over all leading dims
  int64_t group_size;                // G
  std::vector<int64_t> codes_shape;  // [..., n_groups * G]
  int64_t numel;                     // weights in the output
};

// qweight: uint8, [..., n_groups, 3*G/4], CPU (or Meta), contiguous, with
// an output shape whose size fits int64.
PackedLayout CheckQweight(const char* op, const at::Tensor& qweight);

// Shape of unpack's codes: qweight's, with G codes in the last dim.
std::vector<int64_t> UnpackedShape(const at::Tensor& qweight, const PackedLayout& layout);

// `arg` (an output dtype) is float16, bfloat16 or float32.
void CheckOutputDtype(const char* op, const char* arg, at::ScalarType dtype);

// The kernels' output type of a checked output dtype.
OutputType OutputTypeOf(at::ScalarType dtype);

// An out= tensor: an output dtype, on the inputs' device, contiguous, of
// exactly layout.numel elements, and sharing no memory with any input
// (named with it) or with itself.
void CheckOut(const char* op, const at::Tensor& out, const PackedLayout& layout,
              std::initializer_list<std::pair<const char*, const at::Tensor*>> inputs);

// zero_point / scales: `dtype`, [..., n_groups, 1] matching qweight's
// leading dims, on qweight's device, contiguous.
void CheckGroupTensor(const char* op, const char* name, const at::Tensor& t, at::ScalarType dtype,
                      const at::Tensor& qweight);

// All three members of a triple.
PackedLayout CheckTriple(const char* op, const at::Tensor& qweight, const at::Tensor& zero_point,
                         const at::Tensor& scales);

// Sizes of one q6bit.linear call: x [..., K] as [M, K], W [N, K].
struct LinearShape {
  int64_t m, n, k, group_size;
};

// q6bit.linear's inputs: x float16 / bfloat16 / float32 with K = n_groups * G
// in its last dim; a triple of one [N, K] matrix (qweight [N, n_groups,
// 3*G/4]); bias None or [N] of x's dtype; all on the CPU; M * N (and the
// fp32 bytes of it) representable.
LinearShape CheckLinear(const char* op, const at::Tensor& x, const at::Tensor& qweight,
                        const at::Tensor& zero_point, const at::Tensor& scales,
                        const c10::optional<at::Tensor>& bias);

}  // namespace q6bit

#endif  // Q6BIT_CSRC_VALIDATE_H_
