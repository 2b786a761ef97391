// The dequantizer's entry points (kernels/dequant.cc exports them), and on
// AVX-512 VBMI (Highway's AVX3_DL target) its fp16 and bf16 outputs through
// each group's weight table; included once per target.
//
// A group's 64 possible weights are looked up (kernels/linear_tables-inl.h
// says why a table) instead of computed one by one: DequantizeChunk takes
// ~11 vector ops per 16 bf16 weights (promote, subtract, convert, multiply,
// the fp16 rounding, the bf16 rounding) and ~6 per 16 fp16 ones; a chunk of
// 64 codes through a table is 8 (ChunkCodes' two shuffles, two word
// lookups, a shift, two unpacks into k order) and 2 stores, plus the
// table's share. The weights are the same bits: a table's entries are
// DequantizeCodes<kOut> of codes 0..63, the very function DequantizeChunk
// applies, or for bf16 where the CPU has AVX512_BF16 and the group's scale
// passes SplitRoundsExactly, BF16GroupTables (the packed matmul's builder,
// equal to it on such groups: linear_tables-inl.h and tests/cpp/
// linear_test.cc's one-hot test). Other targets, fp32 outputs and groups of
// other sizes take DequantizeGroupsImpl (kernels/dequant-inl.h).

#if defined(Q6BIT_KERNELS_DEQUANT_GROUPS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_DEQUANT_GROUPS_INL_H_
#undef Q6BIT_KERNELS_DEQUANT_GROUPS_INL_H_
#else
#define Q6BIT_KERNELS_DEQUANT_GROUPS_INL_H_
#endif

#include <stddef.h>
#include <stdint.h>

#include <algorithm>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernels/dequant-inl.h"
#include "kernels/linear_chunks-inl.h"
#include "kernels/linear_tables-inl.h"
#include "kernels/q6bit_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {

#if Q6BIT_HAVE_VBMI_LINEAR

// For StoreChunkWords: the codes of triplets 2L, 2L + 1 (k = 8L..8L + 7) in
// bytes 16L..16L + 7 and of triplets 8 + 2L, 9 + 2L (k = 32 + 8L..) in
// bytes 16L + 8..16L + 15, L = 0..3 (one 128-bit block each): the even and
// odd lookups, unpacked low and high word by word within each block, then
// give k = 0..31 and 32..63 in order.
HWY_INLINE ChunkUnpack MakeChunkUnpackInOrder() {
#define Q6BIT_WORD(a, b) 3 * (a), 3 * (a) + 1, 3 * (a) + 2, 3 * (b), 3 * (b) + 1, 3 * (b) + 2, 0, 0
  // clang-format off
  HWY_ALIGN static constexpr uint8_t kSpread[64] = {
      Q6BIT_WORD(0, 1), Q6BIT_WORD(8, 9), Q6BIT_WORD(2, 3), Q6BIT_WORD(10, 11),
      Q6BIT_WORD(4, 5), Q6BIT_WORD(12, 13), Q6BIT_WORD(6, 7), Q6BIT_WORD(14, 15)};
  // clang-format on
#undef Q6BIT_WORD
  return {_mm512_load_si512(kSpread), ChunkShifts()};
}

// The 64 weights of one chunk (48 packed bytes) as fp16 or bf16 words, in
// k order, from the group's word table.
template <bool kStream>
HWY_INLINE void StoreChunkWords(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                                const WordTables& t, uint16_t* HWY_RESTRICT out) {
  __m512i even, odd;
  ChunkBF16Words(packed, unpack, t, even, odd);
  const __m512i low = _mm512_unpacklo_epi16(even, odd);
  const __m512i high = _mm512_unpackhi_epi16(even, odd);
  if constexpr (kStream) {
    _mm512_stream_si512(reinterpret_cast<__m512i*>(out), low);
    _mm512_stream_si512(reinterpret_cast<__m512i*>(out + 32), high);
  } else {
    _mm512_storeu_si512(out, low);
    _mm512_storeu_si512(out + 32, high);
  }
}

// One group's table of the 64 output words, by DequantizeCodes itself.
template <OutputType kOut>
HWY_INLINE WordTables DequantizedTables(int8_t zero_point, uint16_t scale_f16) {
  const hn::Full512<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const hn::Full512<uint16_t> du16;
  HWY_ALIGN static constexpr uint8_t kCodes[64] = {
      0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
      22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43,
      44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};
  const auto zp = hn::Set(di, zero_point);
  const auto scale = hn::Set(df, F16BitsToF32(scale_f16));
  const auto words = [&](size_t first) HWY_ATTR {
    return DequantizeCodes<kOut>(df, hn::Load(du8, kCodes + first), zp, scale);
  };
  return WordTables{hn::Combine(du16, words(16), words(0)).raw,
                    hn::Combine(du16, words(48), words(32)).raw};
}

// One group's weights (group_size a multiple of kVbmiChunk) from its table.
template <bool kStream>
HWY_INLINE void StoreGroupWords(const uint8_t* HWY_RESTRICT packed, const ChunkUnpack& unpack,
                                const WordTables& t, size_t group_size,
                                uint16_t* HWY_RESTRICT out) {
  for (size_t i = 0; i < group_size; i += kVbmiChunk, packed += 48) {
    StoreChunkWords<kStream>(packed, unpack, t, out + i);
  }
}

// bf16 groups [0, count) (count <= kBF16GroupTablesMax) of the block at
// `packed`, whose tables BF16GroupTables builds where the scale allows.
template <bool kStream>
Q6BIT_F16C_TABLES_ATTR HWY_NOINLINE void DequantizeBlockF16C(
    const uint8_t* HWY_RESTRICT packed, const int8_t* HWY_RESTRICT zero_point,
    const uint16_t* HWY_RESTRICT scales_f16, size_t group_size, size_t count,
    uint16_t* HWY_RESTRICT out) {
  const ChunkUnpack unpack = MakeChunkUnpackInOrder();
  const size_t group_bytes = PackedBytesPerGroup(group_size);
  BF16GroupTables widened;
  widened.Widen(zero_point, scales_f16, count);
  for (size_t g = 0; g < count; ++g, packed += group_bytes, out += group_size) {
    const WordTables t = widened.split >> g & 1
                             ? widened.Of(g)
                             : DequantizedTables<OutputType::kBF16>(zero_point[g], scales_f16[g]);
    StoreGroupWords<kStream>(packed, unpack, t, group_size, out);
  }
}

// Groups [group_begin, group_end) into `output` by tables (group_size a
// multiple of kVbmiChunk), as DequantizeGroupsImpl writes them.
template <OutputType kOut, bool kStream>
void DequantizeGroupsByTables(const uint8_t* HWY_RESTRICT qweight,
                              const int8_t* HWY_RESTRICT zero_point,
                              const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                              size_t group_begin, size_t group_end, uint16_t* HWY_RESTRICT output) {
  static_assert(kOut != OutputType::kF32, "word tables hold fp16 or bf16 weights");
  const size_t group_bytes = PackedBytesPerGroup(group_size);
  if (kOut == OutputType::kBF16 && CpuExtensionUsable(CpuExtension::kBF16Tables)) {
    for (size_t g0 = group_begin; g0 < group_end; g0 += kBF16GroupTablesMax) {
      DequantizeBlockF16C<kStream>(qweight + g0 * group_bytes, zero_point + g0, scales_f16 + g0,
                                   group_size, std::min(kBF16GroupTablesMax, group_end - g0),
                                   output + (g0 - group_begin) * group_size);
    }
    return;
  }
  const ChunkUnpack unpack = MakeChunkUnpackInOrder();
  for (size_t group = group_begin; group < group_end; ++group) {
    StoreGroupWords<kStream>(qweight + group * group_bytes, unpack,
                             DequantizedTables<kOut>(zero_point[group], scales_f16[group]),
                             group_size, output + (group - group_begin) * group_size);
  }
}

#endif  // Q6BIT_HAVE_VBMI_LINEAR

template <OutputType kOut, bool kStream>
void DequantizeGroupsOn(const uint8_t* HWY_RESTRICT qweight, const int8_t* HWY_RESTRICT zero_point,
                        const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                        size_t group_begin, size_t group_end,
                        OutElement<kOut>* HWY_RESTRICT output) {
#if Q6BIT_HAVE_VBMI_LINEAR
  if constexpr (kOut != OutputType::kF32) {
    if (group_size % kVbmiChunk == 0) {
      return DequantizeGroupsByTables<kOut, kStream>(qweight, zero_point, scales_f16, group_size,
                                                     group_begin, group_end, output);
    }
  }
#endif
  DequantizeGroupsImpl<kOut, kStream>(qweight, zero_point, scales_f16, group_size, group_begin,
                                      group_end, output);
}

template <OutputType kOut>
void DequantizeGroupsOf(const uint8_t* qweight, const int8_t* zero_point,
                        const uint16_t* scales_f16, size_t group_size, size_t group_begin,
                        size_t group_end, void* out, bool stream) {
  auto* const output = static_cast<OutElement<kOut>*>(out);
  // Streaming stores need every full chunk's output aligned to the vector:
  // true when the output and each group start on such a boundary.
  const size_t align = hn::Lanes(hn::ScalableTag<float>()) * sizeof(float);
  const uintptr_t first = reinterpret_cast<uintptr_t>(output + group_begin * group_size);
  if (stream && first % align == 0 && (group_size * sizeof(*output)) % align == 0) {
    DequantizeGroupsOn<kOut, true>(qweight, zero_point, scales_f16, group_size, group_begin,
                                   group_end, output + group_begin * group_size);
    hwy::FlushStream();  // order the non-temporal stores before returning
  } else {
    DequantizeGroupsOn<kOut, false>(qweight, zero_point, scales_f16, group_size, group_begin,
                                    group_end, output + group_begin * group_size);
  }
}

inline void DequantizeGroupsT(const uint8_t* HWY_RESTRICT qweight,
                              const int8_t* HWY_RESTRICT zero_point,
                              const uint16_t* HWY_RESTRICT scales_f16, size_t group_size,
                              size_t group_begin, size_t group_end, void* HWY_RESTRICT out,
                              OutputType type, bool stream) {
  switch (type) {
    case OutputType::kF16:
      return DequantizeGroupsOf<OutputType::kF16>(qweight, zero_point, scales_f16, group_size,
                                                  group_begin, group_end, out, stream);
    case OutputType::kBF16:
      return DequantizeGroupsOf<OutputType::kBF16>(qweight, zero_point, scales_f16, group_size,
                                                   group_begin, group_end, out, stream);
    case OutputType::kF32:
      return DequantizeGroupsOf<OutputType::kF32>(qweight, zero_point, scales_f16, group_size,
                                                  group_begin, group_end, out, stream);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_DEQUANT_GROUPS_INL_H_
