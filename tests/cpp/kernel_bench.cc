// Single-thread micro-benchmark of the dequant kernel on every runnable
// Highway target, data in cache (96 KiB in, 256 KiB out, fits L2).
// Reports bytes_per_second as fp16 OUTPUT bytes.
//   build: cmake -DQ6BIT_BUILD_BENCHMARKS=ON ... ; run: q6bit_kernel_bench

#include <stdint.h>

#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

namespace {

constexpr size_t kGroup = 128;
constexpr size_t kRows = 1024;

void BM_Dequantize(benchmark::State& state, const std::string& target) {
  if (!q6bit::ForceTarget(target)) {
    state.SkipWithError("target not runnable");
    return;
  }
  std::mt19937 rng(7);
  std::vector<uint8_t> packed(kRows * q6bit::PackedBytesPerGroup(kGroup));
  std::vector<int8_t> zero_points(kRows);
  std::vector<uint16_t> scales(kRows);
  for (auto& b : packed) b = rng();
  for (auto& z : zero_points) z = 24 + rng() % 16;
  for (auto& s : scales) s = 0x1400 + rng() % 0x400;  // ~1e-3
  std::vector<uint16_t> out(kRows * kGroup);
  for (auto _ : state) {
    q6bit::DequantizeRows(packed.data(), zero_points.data(), scales.data(), kGroup, 0,
                          kRows, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * out.size() * sizeof(uint16_t));
  state.counters["ns_per_weight"] = benchmark::Counter(
      static_cast<double>(state.iterations() * out.size()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  q6bit::ForceTarget("");
}

}  // namespace

int main(int argc, char** argv) {
  for (const std::string& target : q6bit::RunnableTargets()) {
    benchmark::RegisterBenchmark(("Dequantize/G128/" + target).c_str(), BM_Dequantize, target);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
