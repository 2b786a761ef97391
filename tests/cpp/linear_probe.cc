// The packed GEMV kernel alone (q6bit::LinearRows, bf16 weights, G = 128),
// output rows split evenly over OpenMP threads, no torch: weights per
// second and packed bytes per second, with the CPU extensions beyond
// AVX3_DL (q6bit::CpuExtension) allowed or not. BENCHMARKS.md's
// kernel-alone table.
//   build: cmake -DQ6BIT_BUILD_BENCHMARKS=ON ... ;
//   run:   OMP_NUM_THREADS=T q6bit_linear_probe N K M RUNS FP16_TABLES BF16_TABLES BF16_DOT AMX
//          (each 0 or 1: that extension forbidden or allowed); Q6BIT_PROBE_TARGET=AVX2
//          (a Highway target name) runs that target instead of the best one.

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <chrono>
#include <vector>

#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

int main(int argc, char** argv) {
  if (argc != 9) {
    fprintf(stderr,
            "usage: %s N K M RUNS FP16_TABLES(0|1) BF16_TABLES(0|1) BF16_DOT(0|1) AMX(0|1)  (K: a "
            "multiple of 128)\n",
            argv[0]);
    return 2;
  }
  const size_t n = atol(argv[1]), k = atol(argv[2]), m = atol(argv[3]);
  const int runs = atoi(argv[4]);
  if (const char* target = getenv("Q6BIT_PROBE_TARGET")) {
    if (!q6bit::ForceTarget(target)) {
      fprintf(stderr, "target %s is not compiled in or not supported by this CPU\n", target);
      return 2;
    }
  }
  q6bit::AllowCpuExtension(q6bit::CpuExtension::kFP16Tables, atoi(argv[5]) != 0);
  q6bit::AllowCpuExtension(q6bit::CpuExtension::kBF16Tables, atoi(argv[6]) != 0);
  q6bit::AllowCpuExtension(q6bit::CpuExtension::kBF16Dot, atoi(argv[7]) != 0);
  q6bit::AllowCpuExtension(q6bit::CpuExtension::kAmx, atoi(argv[8]) != 0);
  const size_t group = 128, groups = n * k / group;
  std::vector<uint8_t> packed(groups * q6bit::PackedBytesPerGroup(group));
  std::vector<int8_t> zero_points(groups);
  std::vector<uint16_t> scales(groups);
#pragma omp parallel for  // first touch by the threads that read them
  for (size_t i = 0; i < packed.size(); ++i)
    packed[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  for (size_t g = 0; g < groups; ++g) {
    zero_points[g] = static_cast<int8_t>(32 - g % 8);
    scales[g] = static_cast<uint16_t>(0x1C00 | (g & 0x3FF));  // 2^-8 .. 2^-7
  }
  std::vector<float> x(m * k, 0.5f), y(m * n);
  const auto pass = [&] {
#pragma omp parallel
    {
      const size_t t = omp_get_thread_num(), threads = omp_get_num_threads();
      q6bit::LinearRows(x.data(), m, k, packed.data(), zero_points.data(), scales.data(), group,
                        q6bit::OutputType::kBF16, n * t / threads, n * (t + 1) / threads, y.data(),
                        n);
    }
  };
  pass();  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < runs; ++r) pass();
  const double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      runs;
  printf(
      "threads=%d N=%zu K=%zu M=%zu fp16_tables=%d bf16_tables=%d bf16_dot=%d amx=%d: %.3f ms, "
      "%.4f ns/weight, "
      "%.1f G weights/s, %.1f GB/s packed [%s]\n",
      omp_get_max_threads(), n, k, m,
      static_cast<int>(q6bit::CpuExtensionInUse(q6bit::CpuExtension::kFP16Tables)),
      static_cast<int>(q6bit::CpuExtensionInUse(q6bit::CpuExtension::kBF16Tables)),
      static_cast<int>(q6bit::CpuExtensionInUse(q6bit::CpuExtension::kBF16Dot)),
      static_cast<int>(q6bit::CpuExtensionInUse(q6bit::CpuExtension::kAmx)), ns / 1e6,
      ns / static_cast<double>(n * k), n * k / ns, packed.size() / ns,
      q6bit::ActiveTarget().c_str());
  return 0;
}
