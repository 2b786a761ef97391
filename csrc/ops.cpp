// The q6bit torch ops: validation, allocation and threading around the
// torch-free kernels in kernels/. Registered as torch.ops.q6bit.*; only
// tensor ops live here (the kernel-target and thread helpers are plain
// functions of the Python module, csrc/py_module.cpp). Their fake (Meta)
// implementations are Python, q6bit/_fake.py, so that they work with
// symbolic shapes under torch.compile.
//
// Threads come from at::parallel_for, which is torch's own OpenMP runtime in
// torch builds: no second libgomp enters the process, and
// torch.set_num_threads() is honoured.

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "csrc/huge_page_alloc.h"
#include "csrc/validate.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {
namespace {

// Groups per parallel task: at least ~32K weights, so that small tensors
// stay on one thread and big ones split evenly.
int64_t GrainGroups(int64_t group_size) {
  return std::max<int64_t>(1, (int64_t{1} << 15) / group_size);
}

// Writes the triple's weight into `out` (contiguous, of the right size, of
// an output dtype), the groups split across torch's threads.
void DequantizeInto(const at::Tensor& qweight, const at::Tensor& zero_point,
                    const at::Tensor& scales, const PackedLayout& layout, at::Tensor& out,
                    bool stream) {
  const uint8_t* packed = qweight.data_ptr<uint8_t>();
  const int8_t* zp = zero_point.data_ptr<int8_t>();
  const auto* scale = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  void* dst = out.data_ptr();
  const OutputType type = OutputTypeOf(out.scalar_type());
  const size_t group_size = layout.group_size;
  at::parallel_for(0, layout.num_groups, GrainGroups(layout.group_size),
                   [&](int64_t begin, int64_t end) {
                     DequantizeGroups(packed, zp, scale, group_size, begin, end, dst, type, stream);
                   });
}

// dequantize: a fresh output of `dtype`. Large outputs get their own
// huge-page mapping (EmptyForWriting), written with streaming stores (they
// pay off for fresh huge-page outputs, measured); callers that consume
// outputs one by one reuse memory with dequantize.out instead.
at::Tensor Dequantize(const at::Tensor& qweight, const at::Tensor& zero_point,
                      const at::Tensor& scales, at::ScalarType dtype) {
  constexpr const char* op = "q6bit.dequantize";
  CheckOutputDtype(op, "dtype", dtype);
  const PackedLayout layout = CheckTriple(op, qweight, zero_point, scales);
  at::Tensor out = EmptyForWriting(layout.codes_shape, qweight.options().dtype(dtype));
  DequantizeInto(qweight, zero_point, scales, layout, out, UseStreamingStores(out.nbytes()));
  return out;
}

// dequantize.out: writes into a caller's buffer of the output's size and an
// output dtype (a loader reusing one buffer for every weight never faults in
// new pages). Written through the caches: a reused buffer is often read
// again soon (a loader copies it into the model).
at::Tensor& DequantizeOut(const at::Tensor& qweight, const at::Tensor& zero_point,
                          const at::Tensor& scales, at::Tensor& out) {
  constexpr const char* op = "q6bit.dequantize.out";
  const PackedLayout layout = CheckTriple(op, qweight, zero_point, scales);
  CheckOut(op, out, layout,
           {{"qweight", &qweight}, {"zero_point", &zero_point}, {"scales", &scales}});
  out.resize_(layout.codes_shape);  // same numel: no reallocation, as out= ops do
  DequantizeInto(qweight, zero_point, scales, layout, out, /*stream=*/false);
  return out;
}

// Groups of one work item of dequantize_list: one 2 MiB huge page of fp16
// output (EmptyForWriting aligns outputs to huge pages), so that every fresh
// huge page is faulted in and zeroed by the one thread that writes it;
// smaller chunks made threads wait on each other's page faults (measured on
// 16 cores: 256 KiB chunks 0.73 s vs one region per tensor 0.58 s).
int64_t ChunkGroups(int64_t group_size) {
  return std::max<int64_t>(1, (int64_t{2} << 20) / (group_size * int64_t{sizeof(uint16_t)}));
}

// Many triples in one parallel region: every output is allocated first, then
// all threads take equal-size chunks from one shared counter until none are
// left. One fork/join instead of one per tensor, and no thread waits at a
// per-tensor barrier for another one's page faults.
std::vector<at::Tensor> DequantizeList(at::TensorList qweights, at::TensorList zero_points,
                                       at::TensorList scales) {
  constexpr const char* op = "q6bit.dequantize_list";
  TORCH_CHECK_VALUE(qweights.size() == zero_points.size() && qweights.size() == scales.size(), op,
                    ": got ", qweights.size(), " qweights, ", zero_points.size(),
                    " zero_points and ", scales.size(), " scales; they must pair up");
  struct Chunk {
    size_t tensor;
    int64_t group_begin, group_end;
  };
  std::vector<at::Tensor> outputs;
  std::vector<PackedLayout> layouts;
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < qweights.size(); ++t) {
    const std::string what = std::string(op) + "[" + std::to_string(t) + "]";
    layouts.push_back(CheckTriple(what.c_str(), qweights[t], zero_points[t], scales[t]));
    const PackedLayout& layout = layouts.back();
    outputs.push_back(EmptyForWriting(layout.codes_shape, qweights[t].options().dtype(at::kHalf)));
    const int64_t step = ChunkGroups(layout.group_size);
    for (int64_t g = 0; g < layout.num_groups; g += step) {
      chunks.push_back({t, g, std::min(layout.num_groups, g + step)});
    }
  }
  std::atomic<size_t> next{0};
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    for (size_t i = next++; i < chunks.size(); i = next++) {
      const Chunk& c = chunks[i];
      const at::Tensor& out = outputs[c.tensor];
      DequantizeGroups(qweights[c.tensor].data_ptr<uint8_t>(),
                       zero_points[c.tensor].data_ptr<int8_t>(),
                       reinterpret_cast<const uint16_t*>(scales[c.tensor].data_ptr<at::Half>()),
                       layouts[c.tensor].group_size, c.group_begin, c.group_end, out.data_ptr(),
                       OutputType::kF16, UseStreamingStores(out.nbytes()));
    }
  });
  return outputs;
}

at::Tensor Unpack(const at::Tensor& qweight) {
  const PackedLayout layout = CheckQweight("q6bit.unpack", qweight);
  at::Tensor out = at::empty(UnpackedShape(qweight, layout), qweight.options());
  const uint8_t* packed = qweight.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  const size_t group_size = layout.group_size;
  at::parallel_for(
      0, layout.num_groups, GrainGroups(layout.group_size),
      [&](int64_t begin, int64_t end) { UnpackGroups(packed, group_size, begin, end, dst); });
  return out;
}

}  // namespace

TORCH_LIBRARY(q6bit, m) {
  // FakeTensor imports this module for the fake implementations when it
  // needs them and nobody imported q6bit.ops yet.
  m.set_python_module("q6bit._fake");
  m.def(
      "dequantize(Tensor qweight, Tensor zero_point, Tensor scales, *, "
      "ScalarType dtype=float16) -> Tensor");
  m.def(
      "dequantize.out(Tensor qweight, Tensor zero_point, Tensor scales, *, "
      "Tensor(a!) out) -> Tensor(a!)");
  m.def("dequantize_list(Tensor[] qweights, Tensor[] zero_points, Tensor[] scales) -> Tensor[]");
  m.def("unpack(Tensor qweight) -> Tensor");
}

TORCH_LIBRARY_IMPL(q6bit, CPU, m) {
  m.impl("dequantize", &Dequantize);
  m.impl("dequantize.out", &DequantizeOut);
  m.impl("unpack", &Unpack);
  m.impl("dequantize_list", &DequantizeList);
}

}  // namespace q6bit
