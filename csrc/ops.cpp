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
#include <atomic>
#include <string>
#include <vector>

#include "csrc/huge_page_alloc.h"
#include "csrc/validate.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {
namespace {

// Rows per parallel task: at least ~32K weights, so that small tensors stay
// on one thread and big ones split evenly.
int64_t GrainRows(int64_t group_size) {
  return std::max<int64_t>(1, (int64_t{1} << 15) / group_size);
}

// Writes the triple's fp16 weight into `out` (contiguous, of the right size),
// the rows split across torch's threads.
void DequantizeInto(const at::Tensor& qweight, const at::Tensor& zero_point,
                    const at::Tensor& scales, const PackedLayout& layout, at::Tensor& out,
                    bool stream) {
  const uint8_t* packed = qweight.data_ptr<uint8_t>();
  const int8_t* zp = zero_point.data_ptr<int8_t>();
  const auto* scale = reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
  auto* dst = reinterpret_cast<uint16_t*>(out.data_ptr<at::Half>());
  const size_t group_size = layout.group_size;
  at::parallel_for(0, layout.num_groups, GrainRows(layout.group_size),
                   [&](int64_t begin, int64_t end) {
                     DequantizeGroups(packed, zp, scale, group_size, begin, end, dst, OutputType::kF16, stream);
                   });
}

// huge_pages: put a large output in its own huge-page mapping (best when
// many outputs are alive at once); false: torch's allocator, which reuses
// memory freed by earlier outputs (best when they are consumed one by one,
// as in a streaming loader).
at::Tensor Dequantize(const at::Tensor& qweight, const at::Tensor& zero_point,
                      const at::Tensor& scales, bool huge_pages) {
  const PackedLayout layout = CheckTriple("q6bit.dequantize", qweight, zero_point, scales);
  const at::TensorOptions options = qweight.options().dtype(at::kHalf);
  at::Tensor out = huge_pages ? EmptyForWriting(layout.codes_shape, options)
                              : at::empty(layout.codes_shape, options);
  // Streaming stores pay off for fresh huge-page outputs (measured); an
  // output in reused memory is often read again soon (a loader copies it
  // into the model), so it is written through the caches.
  DequantizeInto(qweight, zero_point, scales, layout, out,
                 huge_pages && OutputType::kF16, UseStreamingStores(out.nbytes()));
  return out;
}

// dequantize.out: writes into a caller's fp16 buffer of the output's size
// (a loader reusing one buffer for every weight never faults in new pages).
at::Tensor& DequantizeOut(const at::Tensor& qweight, const at::Tensor& zero_point,
                          const at::Tensor& scales, at::Tensor& out) {
  constexpr const char* op = "q6bit.dequantize.out";
  const PackedLayout layout = CheckTriple(op, qweight, zero_point, scales);
  int64_t numel = 1;
  for (int64_t d : layout.codes_shape) numel *= d;
  TORCH_CHECK_VALUE(out.scalar_type() == at::kHalf, op, ": out must be float16, got ",
                    out.scalar_type());
  TORCH_CHECK_VALUE(out.device().is_cpu() && out.is_contiguous() && out.numel() == numel, op,
                    ": out must be a contiguous CPU tensor of ", numel, " elements, got ",
                    out.numel(), out.is_contiguous() ? "" : " (not contiguous)");
  out.resize_(layout.codes_shape);  // same numel: no reallocation, as out= ops do
  DequantizeInto(qweight, zero_point, scales, layout, out, /*stream=*/false);
  return out;
}

// Rows of one work item of dequantize_list: one 2 MiB huge page of fp16
// output (EmptyForWriting aligns outputs to huge pages), so that every fresh
// huge page is faulted in and zeroed by the one thread that writes it;
// smaller chunks made threads wait on each other's page faults (measured on
// 16 cores: 256 KiB chunks 0.73 s vs one region per tensor 0.58 s).
int64_t ChunkRows(int64_t group_size) {
  return std::max<int64_t>(1, (int64_t{2} << 20) / (group_size * int64_t{sizeof(uint16_t)}));
}

// Many triples in one parallel region: every output is allocated first, then
// all threads take equal-size chunks from one shared counter until none are
// left. One fork/join instead of one per tensor, and no thread waits at a
// per-tensor barrier for another one's page faults.
std::vector<at::Tensor> DequantizeList(at::TensorList qweights, at::TensorList zero_points,
                                       at::TensorList scales) {
  constexpr const char* op = "q6bit.dequantize_list";
  TORCH_CHECK_VALUE(qweights.size() == zero_points.size() && qweights.size() == scales.size(),
                    op, ": got ", qweights.size(), " qweights, ", zero_points.size(),
                    " zero_points and ", scales.size(), " scales; they must pair up");
  struct Chunk {
    size_t tensor;
    int64_t row_begin, row_end;
  };
  std::vector<at::Tensor> outputs;
  std::vector<PackedLayout> layouts;
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < qweights.size(); ++t) {
    const std::string what = std::string(op) + "[" + std::to_string(t) + "]";
    layouts.push_back(CheckTriple(what.c_str(), qweights[t], zero_points[t], scales[t]));
    const PackedLayout& layout = layouts.back();
    outputs.push_back(EmptyForWriting(layout.codes_shape, qweights[t].options().dtype(at::kHalf)));
    const int64_t step = ChunkRows(layout.group_size);
    for (int64_t r = 0; r < layout.num_groups; r += step) {
      chunks.push_back({t, r, std::min(layout.num_groups, r + step)});
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
                     layouts[c.tensor].group_size, c.row_begin, c.row_end,
                     reinterpret_cast<uint16_t*>(out.data_ptr<at::Half>()),
                     OutputType::kF16, UseStreamingStores(out.nbytes()));
    }
  });
  return outputs;
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
  at::parallel_for(0, layout.num_groups, GrainRows(layout.group_size),
                   [&](int64_t begin, int64_t end) {
                     UnpackGroups(packed, group_size, begin, end, dst);
                   });
  return out;
}

// Shape-only versions for the Meta device (torch.compile, fake tensors).
at::Tensor DequantizeMeta(const at::Tensor& qweight, const at::Tensor& zero_point,
                          const at::Tensor& scales, bool /*huge_pages*/) {
  const PackedLayout layout = CheckTriple("q6bit.dequantize", qweight, zero_point, scales);
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
  m.def("dequantize(Tensor qweight, Tensor zero_point, Tensor scales, bool huge_pages=True) -> Tensor");
  m.def("dequantize.out(Tensor qweight, Tensor zero_point, Tensor scales, *, Tensor(a!) out) -> Tensor(a!)");
  m.def("unpack(Tensor qweight) -> Tensor");
  m.def("dequantize_list(Tensor[] qweights, Tensor[] zero_points, Tensor[] scales) -> Tensor[]");
  m.def("kernel_target() -> str", &KernelTarget);
  m.def("kernel_targets() -> str[]", &KernelTargets);
  m.def("force_kernel_target(str name) -> bool", &ForceKernelTarget);
  m.def("parallel_threads() -> int", &ParallelThreads);
}

TORCH_LIBRARY_IMPL(q6bit, CPU, m) {
  m.impl("dequantize", &Dequantize);
  m.impl("dequantize.out", &DequantizeOut);
  m.impl("unpack", &Unpack);
  m.impl("dequantize_list", &DequantizeList);
}

TORCH_LIBRARY_IMPL(q6bit, Meta, m) {
  m.impl("dequantize", &DequantizeMeta);
  m.impl("unpack", &UnpackMeta);
}

}  // namespace q6bit
