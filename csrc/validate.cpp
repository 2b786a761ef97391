// Validation of q6bit op inputs: every message names the op, the tensor and
// what is wrong, and says what to do where there is something to do.
#include "csrc/validate.h"

#include <string>
#include <vector>

#include "kernels/q6bit_format.h"

namespace q6bit {
namespace {

std::string ShapeString(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    s += (d ? ", " : "") + std::to_string(t.size(d));
  }
  return s + "]";
}

}  // namespace

PackedLayout CheckQweight(const char* op, const at::Tensor& qweight) {
  TORCH_CHECK_VALUE(qweight.scalar_type() == at::kByte, op,
                    ": qweight must be uint8, got ", qweight.scalar_type());
  TORCH_CHECK_VALUE(qweight.dim() >= 2, op,
                    ": qweight must have shape [..., n_groups, 3*G/4], got ",
                    ShapeString(qweight));
  const int64_t packed = qweight.size(-1);
  TORCH_CHECK_VALUE(packed > 0 && packed % kBytesPerTriplet == 0, op,
                    ": qweight's last dim (", packed,
                    ") must be a positive multiple of 3 (3 bytes hold 4 codes),"
                    " so the group size is not a multiple of 4");
  const int64_t group_size = packed / kBytesPerTriplet * kCodesPerTriplet;
  TORCH_CHECK(IsValidGroupSize(group_size), op, ": invalid group size ",
              group_size);
  if (!qweight.is_meta()) {
    TORCH_CHECK(qweight.device().is_cpu(), op,
                ": qweight must be on the CPU, got ", qweight.device(),
                " (q6bit.dequantize() runs other devices on the reference)");
  }
  TORCH_CHECK_VALUE(qweight.is_contiguous(), op,
                    ": qweight must be contiguous (call .contiguous())");
  PackedLayout layout;
  layout.group_size = group_size;
  layout.num_groups = qweight.numel() / packed;
  layout.codes_shape = qweight.sizes().vec();
  layout.codes_shape.pop_back();
  layout.codes_shape.back() *= group_size;
  return layout;
}

void CheckGroupTensor(const char* op, const char* name, const at::Tensor& t,
                      at::ScalarType dtype, const at::Tensor& qweight) {
  TORCH_CHECK_VALUE(t.scalar_type() == dtype, op, ": ", name, " must be ",
                    dtype, ", got ", t.scalar_type());
  std::vector<int64_t> expected = qweight.sizes().vec();
  expected.back() = 1;
  TORCH_CHECK_VALUE(t.sizes().vec() == expected, op, ": ", name,
                    " must have shape ", at::IntArrayRef(expected),
                    " (one per group of qweight ", ShapeString(qweight),
                    "), got ", ShapeString(t));
  TORCH_CHECK(t.device() == qweight.device(), op, ": ", name, " is on ",
              t.device(), " but qweight is on ", qweight.device());
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name,
                    " must be contiguous (call .contiguous())");
}

PackedLayout CheckTriple(const char* op, const at::Tensor& qweight,
                         const at::Tensor& zero_point, const at::Tensor& scales) {
  PackedLayout layout = CheckQweight(op, qweight);
  CheckGroupTensor(op, "zero_point", zero_point, at::kChar, qweight);
  CheckGroupTensor(op, "scales", scales, at::kHalf, qweight);
  return layout;
}

}  // namespace q6bit
