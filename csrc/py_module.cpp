// The Python module q6bit._C: importing it runs the TORCH_LIBRARY
// registrations of the tensor ops (csrc/ops.cpp, torch.ops.q6bit.*), and it
// holds the process-level helpers that are no tensor ops: which kernel
// target dispatch uses, forcing one (tests, benchmarks), and how many
// threads our parallel regions really get.
#include <ATen/Parallel.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "csrc/linear_op.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {
namespace {

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

}  // namespace
}  // namespace q6bit

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  pybind11::enum_<q6bit::CpuExtension>(m, "CpuExtension")
      .value("fp16_tables", q6bit::CpuExtension::kFP16Tables)
      .value("bf16_tables", q6bit::CpuExtension::kBF16Tables)
      .value("bf16_dot", q6bit::CpuExtension::kBF16Dot)
      .value("amx", q6bit::CpuExtension::kAmx);
  m.doc() = "q6bit kernels: torch.ops.q6bit.* tensor ops plus kernel-target helpers";
  m.def("kernel_target", &q6bit::ActiveTarget, "The Highway target the kernels dispatch to now");
  m.def("kernel_targets", &q6bit::RunnableTargets,
        "Targets compiled in that this CPU can run, best first");
  m.def("force_kernel_target", &q6bit::ForceTarget, pybind11::arg("name"),
        "Pins dispatch to one runnable target ('' restores the best); false if unknown");
  m.def("allow_cpu_extension", &q6bit::AllowCpuExtension, pybind11::arg("extension"),
        pybind11::arg("allowed"),
        "Allows (default) or forbids one of q6bit.linear's x86 extensions beyond AVX3_DL");
  m.def("cpu_extension_in_use", &q6bit::CpuExtensionInUse, pybind11::arg("extension"),
        "Whether q6bit.linear uses that extension now (allowed, on this CPU, target AVX3_DL)");
  m.def("linear_uses_tables", &q6bit::LinearUsesTables,
        "Whether q6bit.linear decodes by per-group tables (AVX-512 VBMI) on the target now");
  m.def("parallel_threads", &q6bit::ParallelThreads,
        "Threads that take part in one of q6bit's at::parallel_for regions");
  m.def(
      "linear_config",
      [] {
        const q6bit::LinearConfig c = q6bit::GetLinearConfig();
        return std::make_pair(c.gemv_max_m, c.tile_bytes);
      },
      "q6bit.linear's (gemv_max_m, tile_bytes): batches M <= gemv_max_m take the packed GEMV "
      "(-1: by dtype and CPU)");
  m.def("set_linear_config", &q6bit::SetLinearConfig,
        pybind11::arg("gemv_max_m") = pybind11::none(),
        pybind11::arg("tile_bytes") = pybind11::none(),
        "Sets q6bit.linear's tuning (tests, benchmarks): gemv_max_m >= 0, or -1 for the "
        "default by dtype and CPU; tile_bytes > 0; None keeps a value (ValueError otherwise)");
  m.def(
      "gemv_max_m", [](bool bf16) { return q6bit::GemvMaxM(bf16 ? c10::kBFloat16 : c10::kFloat); },
      pybind11::arg("bf16"), "The batch threshold that applies now to bf16 x (true) or other x");
}
