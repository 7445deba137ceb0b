// The slow halves of the entry paths: first allocations, large blocks,
// aligned requests, checked frees and error reports.
#include "core/alloc/allocator.h"

#include <errno.h>
#include <string.h>

#include "core/meta/errors.h"
#include "platform/sanitizer.h"

namespace hakmem {

void* allocate_slow(size_t size, bool zero) noexcept {
  if (HAKMEM_UNLIKELY(platform::defer_to_sanitizer_allocator())) {
    return zero ? __interceptor_calloc(1, size) : __interceptor_malloc(size);
  }
  // Small and medium sizes: a block of the thread's heap (medium classes are
  // heap classes whose slabs are runs of slabs, core/meta/chunk.h).
  if (size <= kMaxMediumSize) {
    ThreadHeap* heap = this_thread_heap();
    if (heap == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    void* p = small_alloc(heap, any_size_to_class(size));
    if (zero && p != nullptr) memset(p, 0, size);
    return p;
  }
  if (!ensure_initialized()) {
    errno = ENOMEM;
    return nullptr;
  }
  return g_process.large.alloc(size, 0, zero);
}

// A thread that only ever frees (a consumer of blocks other threads
// allocated) gets a heap on its first such free, so that its remote frees
// are batched like anyone else's. After its heap is gone (a free from a TLS
// destructor that runs after thread_exit) it has none and frees directly.
void free_not_owned(SlabSource& source, ThreadHeap* heap, Slab* s, FreeBlock* b, uintptr_t tag,
                    const char* function) noexcept {
  if (heap == nullptr && !t_heap_retired) heap = this_thread_heap();
  free_remote(source, heap, s, b, tag, function);
}

unsigned aligned_small_class(size_t size, size_t alignment) noexcept {
  // Every medium block is kMediumAlign-aligned (its run starts page-aligned
  // and every medium size is a multiple of kMediumAlign).
  if (size > kMaxSmallSize && size <= kMaxMediumSize && alignment <= kMediumAlign) {
    return medium_size_to_class(size);
  }
  // Power-of-two classes from a page-aligned slab start are aligned to
  // min(block size, page size); every power of two up to 32 KiB is a class.
  if (alignment > kPageSize) return kNumClasses;
  size_t want = size > alignment ? size : alignment;
  if (want > kMaxSmallSize) return kNumClasses;
  size_t pow2 = kMinAlign;
  while (pow2 < want) pow2 <<= 1;
  return size_to_class(pow2);
}

void* allocate_aligned(size_t alignment, size_t size) noexcept {
  if (HAKMEM_UNLIKELY(platform::defer_to_sanitizer_allocator())) {
    void* p = nullptr;
    const int err = __interceptor_posix_memalign(&p, alignment, size);
    if (err != 0) errno = err;
    return err == 0 ? p : nullptr;
  }
  const unsigned cls = aligned_small_class(size, alignment);
  if (cls < kNumClasses) return allocate(class_to_size(cls));
  if (!ensure_initialized()) {
    errno = ENOMEM;
    return nullptr;
  }
  return g_process.large.alloc(size, alignment, false);
}

void report_not_live(const Pointer& ptr, const void* p, const char* function) noexcept {
  // A bad free may be the process's first call: read the configuration
  // (HAKMEM_ON_ERROR) before reporting.
  ensure_initialized();
  const bool block = ptr.is_small() || ptr.is_large();
  report_heap_error(block ? HeapError::kDoubleFree : error_for_non_block(ptr), function, p);
}

void deallocate_slow(void* p, const char* function, size_t size, size_t alignment) noexcept {
  if (p == nullptr) return;
  const Pointer ptr = classify(p);
  // In a chunk (a block start or not): a size of another class is reported
  // as such, the clearer of the two errors for a sized delete.
  if (ptr.chunk != nullptr && size != 0) {
    const unsigned expected = alignment > kMinAlign ? aligned_small_class(size, alignment)
                              : size <= kMaxMediumSize ? any_size_to_class(size)
                                                       : kNumClasses;
    if (expected != ptr.chunk->size_class) {
      return report_heap_error(HeapError::kWrongSize, function, p, size);
    }
  }
  if (ptr.is_small()) return small_free(ptr.slab, ptr.block, function);
  if (ptr.is_large()) {
    if (ptr.large->freed()) return report_not_live(ptr, p, function);
    if (size != 0 && size > ptr.large->usable_size()) {
      return report_heap_error(HeapError::kWrongSize, function, p, size);
    }
    return g_process.large.free(ptr.large);
  }
  if (ptr.kind == PointerKind::kForeign && platform::defer_to_sanitizer_allocator()) {
    return __interceptor_free(p);
  }
  report_not_live(ptr, p, function);
}

}  // namespace hakmem
