// The q6bit torch ops: validation, allocation and threading around the
// torch-free kernels in kernels/. Registered as torch.ops.q6bit.*.
//
// Threads come from at::parallel_for, which is torch's own OpenMP runtime in
// torch builds: no second libgomp enters the process, and
// torch.set_num_threads() is honoured.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <string>
#include <vector>

#include "csrc/huge_page_alloc.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {
namespace {

// Shape facts of one packed tensor [..., n_groups, 3*G/4].
struct PackedLayout {
  int64_t rows;        // number of groups over all leading dims
  int64_t group_size;  // G
  std::vector<int64_t> codes_shape;  // [..., n_groups * G]
};

std::string ShapeString(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) {
    s += (d ? ", " : "") + std::to_string(t.size(d));
  }
  return s + "]";
}

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
  layout.rows = qweight.numel() / packed;
  layout.codes_shape = qweight.sizes().vec();
  layout.codes_shape.pop_back();
  layout.codes_shape.back() *= group_size;
  return layout;
}

// zero_point / scales: [..., n_groups, 1] matching qweight's leading dims.
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

// Rows per parallel task: at least ~32K weights, so that small tensors stay
// on one thread and big ones split evenly.
int64_t GrainRows(int64_t group_size) {
  return std::max<int64_t>(1, (int64_t{1} << 15) / group_size);
}

at::Tensor Dequantize(const at::Tensor& qweight, const at::Tensor& zero_point,
                      const at::Tensor& scales) {
  constexpr const char* op = "q6bit.dequantize";
  const PackedLayout layout = CheckQweight(op, qweight);
  CheckGroupTensor(op, "zero_point", zero_point, at::kChar, qweight);
  CheckGroupTensor(op, "scales", scales, at::kHalf, qweight);
  at::Tensor out = EmptyForWriting(layout.codes_shape, qweight.options().dtype(at::kHalf));
  const uint8_t* packed = qweight.data_ptr<uint8_t>();
  const int8_t* zp = zero_point.data_ptr<int8_t>();
  const auto* scale = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  auto* dst = reinterpret_cast<uint16_t*>(out.data_ptr<at::Half>());
  const size_t group_size = layout.group_size;
  const bool stream = UseStreamingStores(out.nbytes());
  at::parallel_for(0, layout.rows, GrainRows(layout.group_size),
                   [&](int64_t begin, int64_t end) {
                     DequantizeRows(packed, zp, scale, group_size, begin, end, dst, stream);
                   });
  return out;
}

at::Tensor Unpack(const at::Tensor& qweight) {
  const PackedLayout layout = CheckQweight("q6bit.unpack", qweight);
  // Codes keep the seed's [..., n_groups, G] shape.
  std::vector<int64_t> shape = qweight.sizes().vec();
  shape.back() = layout.group_size;
  at::Tensor out = at::empty(shape, qweight.options());
  const uint8_t* packed = qweight.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  const size_t group_size = layout.group_size;
  at::parallel_for(0, layout.rows, GrainRows(layout.group_size),
                   [&](int64_t begin, int64_t end) {
                     UnpackRows(packed, group_size, begin, end, dst);
                   });
  return out;
}

// Shape-only versions for the Meta device (torch.compile, fake tensors).
at::Tensor DequantizeMeta(const at::Tensor& qweight, const at::Tensor& zero_point,
                          const at::Tensor& scales) {
  constexpr const char* op = "q6bit.dequantize";
  const PackedLayout layout = CheckQweight(op, qweight);
  CheckGroupTensor(op, "zero_point", zero_point, at::kChar, qweight);
  CheckGroupTensor(op, "scales", scales, at::kHalf, qweight);
  return at::empty(layout.codes_shape, qweight.options().dtype(at::kHalf));
}

at::Tensor UnpackMeta(const at::Tensor& qweight) {
  const PackedLayout layout = CheckQweight("q6bit.unpack", qweight);
  std::vector<int64_t> shape = qweight.sizes().vec();
  shape.back() = layout.group_size;
  return at::empty(shape, qweight.options());
}

std::string KernelTarget() { return ActiveTarget(); }

// Threads that take part in one of our at::parallel_for regions. A build
// without -fopenmp silently runs them on one thread; tests check this.
int64_t ParallelThreads() {
  std::vector<char> used(at::get_num_threads(), 0);
  at::parallel_for(0, 1 << 20, 1, [&](int64_t, int64_t) {
    const int t = at::get_thread_num();
    if (t >= 0 && t < static_cast<int>(used.size())) used[t] = 1;
    volatile double sink = 0;  // a little work so every thread gets a share
    for (int i = 0; i < 100000; ++i) sink = sink + i;
  });
  return std::count(used.begin(), used.end(), 1);
}

std::vector<std::string> KernelTargets() { return RunnableTargets(); }

bool ForceKernelTarget(const std::string& name) { return ForceTarget(name); }

}  // namespace

TORCH_LIBRARY(q6bit, m) {
  m.def("dequantize(Tensor qweight, Tensor zero_point, Tensor scales) -> Tensor");
  m.def("unpack(Tensor qweight) -> Tensor");
  m.def("kernel_target() -> str", &KernelTarget);
  m.def("kernel_targets() -> str[]", &KernelTargets);
  m.def("force_kernel_target(str name) -> bool", &ForceKernelTarget);
  m.def("parallel_threads() -> int", &ParallelThreads);
}

TORCH_LIBRARY_IMPL(q6bit, CPU, m) {
  m.impl("dequantize", &Dequantize);
  m.impl("unpack", &Unpack);
}

TORCH_LIBRARY_IMPL(q6bit, Meta, m) {
  m.impl("dequantize", &DequantizeMeta);
  m.impl("unpack", &UnpackMeta);
}

}  // namespace q6bit
