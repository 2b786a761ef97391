// Input validation shared by the q6bit ops (CPU and Meta).
#ifndef Q6BIT_CSRC_VALIDATE_H_
#define Q6BIT_CSRC_VALIDATE_H_

#include <ATen/ATen.h>

#include <vector>

namespace q6bit {

// Shape facts of one packed tensor [..., n_groups, 3*G/4].
struct PackedLayout {
  int64_t num_groups;                // number of groups over all leading dims
  int64_t group_size;                // G
  std::vector<int64_t> codes_shape;  // [..., n_groups * G]
};

// qweight: uint8, [..., n_groups, 3*G/4], CPU (or Meta), contiguous.
PackedLayout CheckQweight(const char* op, const at::Tensor& qweight);

// zero_point / scales: `dtype`, [..., n_groups, 1] matching qweight's
// leading dims, on qweight's device, contiguous.
void CheckGroupTensor(const char* op, const char* name, const at::Tensor& t,
                      at::ScalarType dtype, const at::Tensor& qweight);

// All three members of a triple.
PackedLayout CheckTriple(const char* op, const at::Tensor& qweight,
                         const at::Tensor& zero_point, const at::Tensor& scales);

}  // namespace q6bit

#endif  // Q6BIT_CSRC_VALIDATE_H_
