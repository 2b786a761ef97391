// The kernels' passes are templates on the rows of x they take (their
// accumulators are named registers); this turns a run-time row count into
// that template argument once, for every pass (kernels/linear-inl.h,
// kernels/linear_vbmi-inl.h). Included once per target.

#if defined(Q6BIT_KERNELS_LINEAR_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef Q6BIT_KERNELS_LINEAR_ROWS_INL_H_
#undef Q6BIT_KERNELS_LINEAR_ROWS_INL_H_
#else
#define Q6BIT_KERNELS_LINEAR_ROWS_INL_H_
#endif

#include <stddef.h>

#include <type_traits>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace q6bit {
namespace HWY_NAMESPACE {

template <size_t kRows>
using RowCount = std::integral_constant<size_t, kRows>;

// pass(RowCount<rows>()) for rows in [1, kMax] (kMax <= 8); nothing otherwise.
template <size_t kMax, class Pass>
HWY_INLINE void WithRowCount(size_t rows, const Pass& pass) {
  static_assert(kMax >= 1 && kMax <= 8, "rows per pass");
  // clang-format off
  switch (rows) {
    case 1: return pass(RowCount<1>());
    case 2: if constexpr (kMax >= 2) return pass(RowCount<2>()); else return;
    case 3: if constexpr (kMax >= 3) return pass(RowCount<3>()); else return;
    case 4: if constexpr (kMax >= 4) return pass(RowCount<4>()); else return;
    case 5: if constexpr (kMax >= 5) return pass(RowCount<5>()); else return;
    case 6: if constexpr (kMax >= 6) return pass(RowCount<6>()); else return;
    case 7: if constexpr (kMax >= 7) return pass(RowCount<7>()); else return;
    case 8: if constexpr (kMax >= 8) return pass(RowCount<8>()); else return;
    default: return;
  }
  // clang-format on
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace q6bit
HWY_AFTER_NAMESPACE();

#endif  // Q6BIT_KERNELS_LINEAR_ROWS_INL_H_
