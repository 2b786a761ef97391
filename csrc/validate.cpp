// Validation of q6bit op inputs: every message names the op, the tensor and
// what is wrong, and says what to do where there is something to do.
#include "csrc/validate.h"

#include <ATen/MemoryOverlap.h>
#include <c10/util/safe_numerics.h>

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
  TORCH_CHECK_VALUE(qweight.scalar_type() == at::kByte, op, ": qweight must be uint8, got ",
                    qweight.scalar_type());
  TORCH_CHECK_VALUE(qweight.dim() >= 2, op,
                    ": qweight must have shape [..., n_groups, 3*G/4], got ", ShapeString(qweight));
  const int64_t packed = qweight.size(-1);
  TORCH_CHECK_VALUE(packed > 0 && packed % kBytesPerTriplet == 0, op, ": qweight's last dim (",
                    packed,
                    ") must be a positive multiple of 3 (3 bytes hold 4 codes),"
                    " so the group size is not a multiple of 4");
  const int64_t group_size = packed / kBytesPerTriplet * kCodesPerTriplet;
  TORCH_CHECK(IsValidGroupSize(group_size), op, ": invalid group size ", group_size);
  if (!qweight.is_meta()) {
    TORCH_CHECK(qweight.device().is_cpu(), op, ": qweight must be on the CPU, got ",
                qweight.device(), " (q6bit.dequantize() runs other devices on the reference)");
  }
  TORCH_CHECK_VALUE(qweight.is_contiguous(), op,
                    ": qweight must be contiguous (call .contiguous())");
  PackedLayout layout;
  layout.group_size = group_size;
  layout.num_groups = qweight.numel() / packed;
  layout.codes_shape = qweight.sizes().vec();
  layout.codes_shape.pop_back();
  // A shape like [0, 2^61, 3] is a valid (empty) tensor whose output dims
  // overflow int64; say so instead of passing a wrapped size to torch.
  uint64_t numel = 0;
  const bool overflows =
      c10::mul_overflows(layout.codes_shape.back(), group_size, &layout.codes_shape.back()) ||
      c10::safe_multiplies_u64(layout.codes_shape, &numel) ||
      numel > (uint64_t{INT64_MAX} >> 2);  // headroom for the bytes of fp32
  layout.numel = static_cast<int64_t>(numel);
  TORCH_CHECK_VALUE(!overflows, op, ": qweight of shape ", ShapeString(qweight),
                    " gives an output too large to represent (its number of weights, or a"
                    " dim of n_groups * ",
                    group_size, ", overflows int64)");
  return layout;
}

std::vector<int64_t> UnpackedShape(const at::Tensor& qweight, const PackedLayout& layout) {
  std::vector<int64_t> shape = qweight.sizes().vec();
  shape.back() = layout.group_size;
  return shape;
}

void CheckOutputDtype(const char* op, const char* arg, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kFloat, op, ": ",
                    arg, " must be torch.float16, torch.bfloat16 or torch.float32, got ", dtype);
}

OutputType OutputTypeOf(at::ScalarType dtype) {
  switch (dtype) {
    case at::kBFloat16:
      return OutputType::kBF16;
    case at::kFloat:
      return OutputType::kF32;
    default:
      return OutputType::kF16;
  }
}

void CheckOut(const char* op, const at::Tensor& out, const PackedLayout& layout,
              std::initializer_list<std::pair<const char*, const at::Tensor*>> inputs) {
  CheckOutputDtype(op, "out", out.scalar_type());
  const at::Tensor& qweight = *inputs.begin()->second;
  TORCH_CHECK(out.device() == qweight.device(), op, ": out is on ", out.device(),
              " but qweight is on ", qweight.device());
  TORCH_CHECK_VALUE(out.is_contiguous() && out.numel() == layout.numel, op,
                    ": out must be a contiguous tensor of ", layout.numel, " elements, got ",
                    out.numel(), out.is_contiguous() ? "" : " (not contiguous)");
  TORCH_CHECK_VALUE(at::has_internal_overlap(out) != at::MemOverlap::Yes, op,
                    ": out has elements that share memory; pass a tensor of its own");
  for (const auto& [name, input] : inputs) {
    const at::MemOverlapStatus status = at::get_overlap_status(out, *input);
    TORCH_CHECK_VALUE(
        status != at::MemOverlapStatus::Full && status != at::MemOverlapStatus::Partial, op,
        ": out overlaps the memory of ", name, "; the output must not share memory with an input");
  }
}

void CheckGroupTensor(const char* op, const char* name, const at::Tensor& t, at::ScalarType dtype,
                      const at::Tensor& qweight) {
  TORCH_CHECK_VALUE(t.scalar_type() == dtype, op, ": ", name, " must be ", dtype, ", got ",
                    t.scalar_type());
  std::vector<int64_t> expected = qweight.sizes().vec();
  expected.back() = 1;
  TORCH_CHECK_VALUE(t.sizes().vec() == expected, op, ": ", name, " must have shape ",
                    at::IntArrayRef(expected), " (one per group of qweight ", ShapeString(qweight),
                    "), got ", ShapeString(t));
  TORCH_CHECK(t.device() == qweight.device(), op, ": ", name, " is on ", t.device(),
              " but qweight is on ", qweight.device());
  TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", name, " must be contiguous (call .contiguous())");
}

PackedLayout CheckTriple(const char* op, const at::Tensor& qweight, const at::Tensor& zero_point,
                         const at::Tensor& scales) {
  PackedLayout layout = CheckQweight(op, qweight);
  CheckGroupTensor(op, "zero_point", zero_point, at::kChar, qweight);
  CheckGroupTensor(op, "scales", scales, at::kHalf, qweight);
  return layout;
}

LinearShape CheckLinear(const char* op, const at::Tensor& x, const at::Tensor& qweight,
                        const at::Tensor& zero_point, const at::Tensor& scales,
                        const c10::optional<at::Tensor>& bias) {
  CheckOutputDtype(op, "x", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() >= 1, op, ": x must have shape [..., K], got a 0-dim tensor");
  TORCH_CHECK_VALUE(qweight.dim() == 3, op,
                    ": qweight must have shape [N, n_groups, 3*G/4] (one weight matrix), got ",
                    ShapeString(qweight));
  const PackedLayout layout = CheckTriple(op, qweight, zero_point, scales);
  TORCH_CHECK(x.device() == qweight.device(), op, ": x is on ", x.device(), " but qweight is on ",
              qweight.device());
  LinearShape shape;
  shape.n = qweight.size(0);
  shape.k = qweight.size(1) * layout.group_size;  // CheckQweight: no overflow
  shape.group_size = layout.group_size;
  TORCH_CHECK_VALUE(x.size(-1) == shape.k, op, ": x's last dim (", x.size(-1),
                    ") must be the weight's in_features, n_groups * G = ", qweight.size(1), " * ",
                    layout.group_size, " = ", shape.k, " (x has shape ", ShapeString(x), ")");
  uint64_t m = 1;
  const std::vector<int64_t> leading(x.sizes().begin(), x.sizes().end() - 1);
  int64_t out_numel = 0;
  const bool overflows = c10::safe_multiplies_u64(leading, &m) || m > uint64_t{INT64_MAX} ||
                         c10::mul_overflows(static_cast<int64_t>(m), shape.n, &out_numel) ||
                         out_numel > (INT64_MAX >> 2);  // headroom for the fp32 bytes
  TORCH_CHECK_VALUE(!overflows, op, ": x of shape ", ShapeString(x), " and ", shape.n,
                    " output features give an output too large to represent (overflows int64)");
  shape.m = static_cast<int64_t>(m);
  if (bias.has_value()) {
    const at::Tensor& b = *bias;
    TORCH_CHECK_VALUE(b.scalar_type() == x.scalar_type(), op, ": bias must have x's dtype (",
                      x.scalar_type(), "), got ", b.scalar_type());
    TORCH_CHECK_VALUE(b.dim() == 1 && b.size(0) == shape.n, op, ": bias must have shape [", shape.n,
                      "] (one per output feature), got ", ShapeString(b));
    TORCH_CHECK(b.device() == qweight.device(), op, ": bias is on ", b.device(),
                " but qweight is on ", qweight.device());
  }
  return shape;
}

}  // namespace q6bit
