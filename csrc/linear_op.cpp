// q6bit.linear: y = x @ W.T + bias straight from the packed triple, where
// W = q6bit.dequantize(qweight, zero_point, scales, dtype=x.dtype) exactly
// (the fp16 RNE of (code - zero_point) * scale, converted to x's dtype as
// the dense path does). Two paths, chosen by the batch M (rows of x):
//   M <= gemv_max_m (decode): kernels' LinearRows reads each packed byte
//     once; x is converted once to fp32 (exact), products and sums are
//     fp32, the bias is added in fp32, and the result is rounded once to
//     x's dtype. Threads split the output rows N.
//   M > gemv_max_m (prefill): tiles of W's rows are dequantized (the same
//     DequantizeGroups as q6bit.dequantize) into a per-thread scratch
//     buffer in x's dtype, kept between calls (its pages stay touched), and
//     multiplied by torch's GEMM (addmm into the output's column slice):
//     products, sums and bias as torch's CPU GEMM does them (fp32
//     accumulation, one rounding, for bf16/fp16 too), with exactly the dense
//     weights. Tiles are large (tile_bytes, default 256 MiB: a whole
//     Qwen3-8B matrix): torch's GEMM repacks x on every call, which made
//     cache-sized tiles 3-8x slower than one call (measured on the 16-core
//     host, BENCHMARKS.md).
// CPU only; q6bit.ops.linear sends other devices to F.linear(x, dequantize()).

#include "csrc/linear_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "csrc/validate.h"
#include "kernels/q6bit_format.h"
#include "kernels/q6bit_kernels.h"

namespace q6bit {
namespace {

// Measured on the 16-core host: see BENCHMARKS.md ("packed linear").
LinearConfig config{kAutoGemvMaxM, /*tile_bytes=*/int64_t{256} << 20};

// The tiled path's buffer of `bytes`, kept per thread between calls so
// that its pages are touched once, not faulted in anew every call.
void* Scratch(int64_t bytes) {
  thread_local std::vector<uint64_t> buffer;
  const size_t words = static_cast<size_t>(bytes + 7) / 8;
  if (buffer.size() < words) {
    buffer = std::vector<uint64_t>();  // free the old one first
    buffer.resize(words);
  }
  return buffer.data();
}

// Output rows per parallel task of the GEMV: at least ~64K weights.
int64_t GrainRows(int64_t k) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(k, 1));
}

const uint16_t* ScalesBits(const at::Tensor& scales) {
  return reinterpret_cast<const uint16_t*>(scales.data_ptr<at::Half>());
}

// [M, N] in x's dtype by the packed GEMV.
at::Tensor LinearGemv(const at::Tensor& x2d, const at::Tensor& qweight,
                      const at::Tensor& zero_point, const at::Tensor& scales,
                      const c10::optional<at::Tensor>& bias, const LinearShape& shape) {
  const at::Tensor x32 = x2d.to(at::kFloat).contiguous();  // exact for bf16 / fp16
  at::Tensor y32 = at::empty({shape.m, shape.n}, x2d.options().dtype(at::kFloat));
  const float* x = x32.data_ptr<float>();
  float* y = y32.data_ptr<float>();
  const uint8_t* packed = qweight.data_ptr<uint8_t>();
  const int8_t* zp = zero_point.data_ptr<int8_t>();
  const uint16_t* scale = ScalesBits(scales);
  const OutputType type = OutputTypeOf(x2d.scalar_type());
  at::parallel_for(0, shape.n, GrainRows(shape.k), [&](int64_t begin, int64_t end) {
    LinearRows(x, shape.m, shape.k, packed, zp, scale, shape.group_size, type, begin, end, y,
               shape.n);
  });
  if (bias.has_value()) y32.add_(*bias);  // in fp32: the bias widens exactly
  return y32.to(x2d.scalar_type());       // the one rounding (none for fp32)
}

// [M, N] in x's dtype: W dequantized tile by tile, each tile multiplied by
// torch's GEMM straight into its columns of the output.
at::Tensor LinearTiled(const at::Tensor& x2d, const at::Tensor& qweight,
                       const at::Tensor& zero_point, const at::Tensor& scales,
                       const c10::optional<at::Tensor>& bias, const LinearShape& shape) {
  at::Tensor out = at::empty({shape.m, shape.n}, x2d.options());
  const int64_t row_bytes = std::max<int64_t>(1, shape.k * x2d.element_size());
  const int64_t tile_rows =
      std::clamp<int64_t>(config.tile_bytes / row_bytes, 1, std::max<int64_t>(shape.n, 1));
  const at::Tensor tile =
      at::from_blob(Scratch(tile_rows * row_bytes), {tile_rows, shape.k}, x2d.options());
  const int64_t groups_per_row = shape.k / shape.group_size;
  const size_t group_bytes = PackedBytesPerGroup(shape.group_size);
  const OutputType type = OutputTypeOf(x2d.scalar_type());
  for (int64_t n0 = 0; n0 < shape.n; n0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, shape.n - n0);
    const int64_t first_group = n0 * groups_per_row;
    const uint8_t* packed = qweight.data_ptr<uint8_t>() + first_group * group_bytes;
    const int8_t* zp = zero_point.data_ptr<int8_t>() + first_group;
    const uint16_t* scale = ScalesBits(scales) + first_group;
    void* dst = tile.data_ptr();
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / shape.group_size);
    at::parallel_for(0, rows * groups_per_row, grain, [&](int64_t begin, int64_t end) {
      DequantizeGroups(packed, zp, scale, shape.group_size, begin, end, dst, type);
    });
    const at::Tensor w = tile.narrow(0, 0, rows);
    at::Tensor y = out.narrow(1, n0, rows);
    if (bias.has_value()) {
      at::addmm_out(y, bias->narrow(0, n0, rows), x2d, w.t());
    } else {
      at::mm_out(y, x2d, w.t());
    }
  }
  return out;
}

at::Tensor Linear(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& zero_point,
                  const at::Tensor& scales, const c10::optional<at::Tensor>& bias) {
  constexpr const char* op = "q6bit.linear";
  const LinearShape shape = CheckLinear(op, x, qweight, zero_point, scales, bias);
  const at::Tensor x2d = x.reshape({shape.m, shape.k}).contiguous();
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = shape.n;
  const bool gemv = shape.m <= GemvMaxM(x.scalar_type());
  const at::Tensor y = gemv ? LinearGemv(x2d, qweight, zero_point, scales, bias, shape)
                            : LinearTiled(x2d, qweight, zero_point, scales, bias, shape);
  return y.view(out_shape);
}

}  // namespace

LinearConfig GetLinearConfig() { return config; }

void SetLinearConfig(std::optional<int64_t> gemv_max_m, std::optional<int64_t> tile_bytes) {
  if (gemv_max_m && *gemv_max_m < 0 && *gemv_max_m != kAutoGemvMaxM) {
    throw std::invalid_argument(
        "q6bit.linear: gemv_max_m must be >= 0, or -1 for the default, got " +
        std::to_string(*gemv_max_m));
  }
  if (tile_bytes && *tile_bytes <= 0) {
    throw std::invalid_argument("q6bit.linear: tile_bytes must be > 0, got " +
                                std::to_string(*tile_bytes));
  }
  if (gemv_max_m) config.gemv_max_m = *gemv_max_m;
  if (tile_bytes) config.tile_bytes = *tile_bytes;
}

int64_t GemvMaxM(c10::ScalarType dtype) {
  if (config.gemv_max_m != kAutoGemvMaxM) return config.gemv_max_m;
  if (dtype == at::kBFloat16 && CpuExtensionInUse(CpuExtension::kAmx)) return 64;
  // Not on Intel without AMX: there tiles win from M = 16 (measured).
  if (dtype == at::kBFloat16 && CpuExtensionInUse(CpuExtension::kBF16Dot) &&
      BF16DotMinRows() == 1) {
    return 24;
  }
  return 8;
}

TORCH_LIBRARY_FRAGMENT(q6bit, m) {
  m.def(
      "linear(Tensor x, Tensor qweight, Tensor zero_point, Tensor scales, Tensor? bias=None) "
      "-> Tensor");
}

TORCH_LIBRARY_IMPL(q6bit, CPU, m) { m.impl("linear", &Linear); }

}  // namespace q6bit
