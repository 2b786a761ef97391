// Single-thread micro-benchmark of the dequant kernel on every runnable
// Highway target and output type, data in cache (96 KiB in, 256 KiB of fp16
// / bf16 or 512 KiB of fp32 out, fits L2). Reports bytes_per_second as
// OUTPUT bytes, and ns_per_weight.
//   build: cmake -DQ6BIT_BUILD_BENCHMARKS=ON ... ; run: q6bit_kernel_bench

#include <stdint.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

namespace {

constexpr size_t kGroup = 128;
constexpr size_t kGroups = 1024;

void BM_Dequantize(benchmark::State& state, const std::string& target, q6bit::OutputType type) {
  if (!q6bit::ForceTarget(target)) {
    state.SkipWithError("target not runnable");
    return;
  }
  std::mt19937 rng(7);
  std::vector<uint8_t> packed(kGroups * q6bit::PackedBytesPerGroup(kGroup));
  std::vector<int8_t> zero_points(kGroups);
  std::vector<uint16_t> scales(kGroups);
  for (auto& b : packed) b = rng();
  for (auto& z : zero_points) z = 24 + rng() % 16;
  for (auto& s : scales) s = 0x1400 + rng() % 0x400;  // ~1e-3
  const size_t weights = kGroups * kGroup;
  std::vector<uint32_t> out(weights);  // room for fp32
  for (auto _ : state) {
    q6bit::DequantizeGroups(packed.data(), zero_points.data(), scales.data(), kGroup, 0, kGroups,
                            out.data(), type);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * weights * q6bit::OutputBytes(type));
  state.counters["ns_per_weight"] =
      benchmark::Counter(static_cast<double>(state.iterations() * weights),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  q6bit::ForceTarget("");
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<const char*, q6bit::OutputType> types[] = {
      {"", q6bit::OutputType::kF16},  // fp16 keeps the historical names
      {"/bf16", q6bit::OutputType::kBF16},
      {"/f32", q6bit::OutputType::kF32}};
  for (const auto& [suffix, type] : types) {
    for (const std::string& target : q6bit::RunnableTargets()) {
      benchmark::RegisterBenchmark(("Dequantize/G128/" + target + suffix).c_str(), BM_Dequantize,
                                   target, type);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
