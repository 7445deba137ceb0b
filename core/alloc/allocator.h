// The allocation and free paths behind every entry point of api/: the fast
// path inline (fast_path.h), everything else out of line (allocator.cc).
// `function` is the entry point the program called; errors name it.
#pragma once

#include <cstddef>

#include "core/alloc/fast_path.h"
#include "core/alloc/process.h"
#include "core/meta/pointer.h"
#include "core/meta/size_classes.h"
#include "platform/compiler.h"

namespace hakmem {

void* allocate_slow(size_t size, bool zero) noexcept;

// malloc: a small block from the thread's heap, or the slow path.
HAKMEM_ALWAYS_INLINE void* allocate(size_t size) noexcept {
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && size <= kMaxSmallSize)) {
    return small_alloc(heap, size_to_class(size));
  }
  return allocate_slow(size, false);
}

// malloc's fast path with another way out: a request the heap's list cannot
// serve at once (refill, large, first allocation) goes to miss(size), whole,
// as a tail call, so that an entry point with its own failure handling
// (operator new) has no more on its hot path than malloc has.
template <auto Miss>
HAKMEM_ALWAYS_INLINE void* allocate_or(size_t size) noexcept(noexcept(Miss(size))) {
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && size <= kMaxSmallSize)) {
    HotClass& hot = heap->hot[size_to_class(size)];
    if (HAKMEM_LIKELY(hot.free != nullptr)) return pop_hot(hot);
  }
  return Miss(size);
}

// A block aligned to `alignment`, a power of two above kMinAlign.
void* allocate_aligned(size_t alignment, size_t size) noexcept;

// Class used for an aligned small or medium request, or kNumClasses if the
// request must go to the large path.
unsigned aligned_small_class(size_t size, size_t alignment) noexcept;

HAKMEM_ALWAYS_INLINE Pointer classify(const void* p) noexcept { return classify(g_registry, p); }
// For the free fast paths below only (see core/meta/pointer.h): whatever
// it does not resolve goes to deallocate_slow, which calls classify().
HAKMEM_ALWAYS_INLINE Pointer classify_fast(const void* p) noexcept {
  return classify_in_first_slab(g_registry, p);
}

// free of anything but a small block by the fast path: null, large blocks,
// errors, sized and aligned deletes. `size` (0 for none) is checked against
// the block, and `alignment` (0 for none) is the one it was requested with.
// It classifies p itself, so that the fast paths keep their classification
// in registers.
void deallocate_slow(void* p, const char* function, size_t size, size_t alignment) noexcept;

HAKMEM_ALWAYS_INLINE void deallocate(void* p, const char* function) noexcept {
  const Pointer ptr = classify_fast(p);
  if (HAKMEM_LIKELY(ptr.is_small())) return small_free(ptr.slab, ptr.block, function);
  deallocate_slow(p, function, 0, 0);
}

// C++ sized delete: the size must be of the block's size class.
HAKMEM_ALWAYS_INLINE void deallocate_sized(void* p, size_t size, const char* function) noexcept {
  if (size == 0) size = 1;
  const Pointer ptr = classify_fast(p);
  if (HAKMEM_LIKELY(ptr.is_small() && size <= kMaxSmallSize &&
                    size_to_class(size) == ptr.slab->size_class)) {
    return small_free(ptr.slab, ptr.block, function);
  }
  deallocate_slow(p, function, size, 0);
}

// The pointer is not a live block: reports it as a double free, a pointer
// hakmem did not hand out, or an interior pointer.
void report_not_live(const Pointer& ptr, const void* p, const char* function) noexcept;

}  // namespace hakmem
