#include "csrc/huge_page_alloc.h"

#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace q6bit {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Below this, torch's allocator (and its reuse of touched heap) is better.
constexpr size_t kMinBytes = size_t{4} << 20;

struct Mapping {
  void* base;
  size_t length;
};

void Unmap(void* ctx) {
  auto* m = static_cast<Mapping*>(ctx);
  munmap(m->base, m->length);
  delete m;
}

// A 2 MiB aligned anonymous mapping of at least `bytes`, or nullptr.
Mapping* MapAligned(size_t bytes) {
  const size_t length = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* raw = mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  // Give back the unaligned head and the unused tail.
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + length + kHugePage;
  if (end > aligned + length)
    munmap(reinterpret_cast<void*>(aligned + length), end - aligned - length);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // advice only
#endif
  return new Mapping{reinterpret_cast<void*>(aligned), length};
}

// True when the environment variable is set to "0".
bool SwitchedOff(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr && env[0] == '0';
}

}  // namespace

at::Tensor EmptyForWriting(at::IntArrayRef shape, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  static const bool disabled = SwitchedOff("Q6BIT_HUGE_PAGES");
  Mapping* mapping = (bytes >= kMinBytes && !disabled) ? MapAligned(bytes) : nullptr;
  if (mapping == nullptr) return at::empty(shape, options);
  c10::DataPtr data(mapping->base, mapping, &Unmap, c10::Device(c10::kCPU));
  c10::Storage storage(c10::Storage::use_byte_size_t(), bytes, std::move(data),
                       c10::GetCPUAllocator(), /*resizable=*/true);
  return at::empty({0}, options).set_(storage, 0, shape);
}

bool UseStreamingStores(size_t bytes) {
  static const bool disabled = SwitchedOff("Q6BIT_STREAM");
  return bytes >= kMinBytes && !disabled;
}

}  // namespace q6bit
