// Output allocation for large dequantized tensors.
#ifndef Q6BIT_CSRC_HUGE_PAGE_ALLOC_H_
#define Q6BIT_CSRC_HUGE_PAGE_ALLOC_H_

#include <ATen/ATen.h>

namespace q6bit {

// An uninitialized contiguous CPU tensor. Large ones get their own mapping,
// 2 MiB aligned and advised as transparent huge pages, so that the threads
// that write it fault it in 2 MiB pages, in parallel, instead of 4 KiB ones
// (the kernel must zero every page it hands out; huge pages make that
// cheaper and fewer). The tensor is an ordinary one: resizable (a resize
// moves it to torch's allocator) and freed (munmap) with its last user.
at::Tensor EmptyForWriting(at::IntArrayRef shape, const at::TensorOptions& options);

// Whether to write an output of `bytes` with non-temporal stores: yes for
// the outputs EmptyForWriting maps itself (far larger than what the caches
// would keep until the consumer reads them). Q6BIT_STREAM=0 turns it off.
bool UseStreamingStores(size_t bytes);

}  // namespace q6bit

#endif  // Q6BIT_CSRC_HUGE_PAGE_ALLOC_H_
