// The hak_ C API (api/hakmem.h). Each entry point classifies the pointer it
// is given once (core/meta/pointer.h) and names itself in error reports.
#include <errno.h>
#include <string.h>

#include "api/hakmem.h"
#include "core/alloc/allocator.h"
#include "platform/sanitizer.h"

using namespace hakmem;

namespace {

// realloc keeps a small block of `usable` bytes for a new size it would not
// save much by moving (hak_realloc and hak_free_sized share this rule):
// unless the block would be less than half used, or it is tiny anyway.
constexpr size_t kTinyBlock = 64;
inline bool realloc_keeps_block(size_t size, size_t usable) {
  return size <= usable && (size > usable / 2 || usable <= kTinyBlock);
}

}  // namespace

extern "C" {

void* hak_malloc(size_t size) { return allocate(size); }

void hak_free(void* p) { deallocate(p, "free"); }

void hak_free_sized(void* p, size_t size) {
  // As C23 free_sized: `size` is the size passed to malloc, calloc or to the
  // realloc that returned p. A realloc that shrank in place leaves a size of
  // a smaller class in a larger block, which is not an error.
  const Pointer ptr = classify(p);
  if (ptr.is_small() && realloc_keeps_block(size, ptr.slab->block_size)) {
    size = 0;  // plausible: no size check, the usual checks still apply
  }
  deallocate_slow(p, "free_sized", size, 0);
}

void* hak_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && total <= kMaxSmallSize)) {
    void* p = small_alloc(heap, size_to_class(total));
    if (p != nullptr) memset(p, 0, total);
    return p;
  }
  return allocate_slow(total, true);
}

size_t hak_usable_size(const void* p) {
  const Pointer ptr = classify(p);
  if (ptr.is_small()) return ptr.slab->block_size;
  if (ptr.is_large()) return ptr.large->freed() ? 0 : ptr.large->usable_size();
  if (ptr.kind == PointerKind::kForeign && p != nullptr &&
      platform::defer_to_sanitizer_allocator()) {
    return __interceptor_malloc_usable_size(p);
  }
  return 0;
}

int hak_owns(const void* p) {
  const Pointer ptr = classify(p);
  if (ptr.is_small()) {
    return ptr.slab->state.load(lockfree::MemoryOrder::relaxed) != kSlabFree &&
           !ptr.freed(g_process.tags);
  }
  return ptr.is_large() && !ptr.large->freed();
}

void* hak_realloc(void* p, size_t size) {
  if (p == nullptr) return hak_malloc(size);
  if (size == 0) {
    hak_free(p);
    return nullptr;
  }
  const Pointer ptr = classify(p);
  size_t old_usable;
  if (ptr.is_small()) {
    if (ptr.freed(g_process.tags) || ptr.slab->state.load(lockfree::MemoryOrder::relaxed) == kSlabFree) {
      report_not_live(ptr, p, "realloc");
      return nullptr;
    }
    old_usable = ptr.slab->block_size;
    if (realloc_keeps_block(size, old_usable)) return p;
  } else if (ptr.is_large()) {
    LargeHeader* h = ptr.large;
    if (h->freed()) {
      report_not_live(ptr, p, "realloc");
      return nullptr;
    }
    old_usable = h->requested;
    if (size > kMaxSmallSize) {
      if (void* q = g_process.large.try_resize_in_place(h, size)) return q;
      if (void* q = g_process.large.grow(h, size)) return q;
    }
  } else if (ptr.kind == PointerKind::kForeign && platform::defer_to_sanitizer_allocator()) {
    return __interceptor_realloc(p, size);
  } else {
    report_not_live(ptr, p, "realloc");
    return nullptr;
  }
  // A block that realloc grows past the small sizes is likely to grow again:
  // it gets a large mapping, which later growth extends in place or with
  // mremap, instead of a medium block copied at every class step.
  const bool growing = size > old_usable && size > kMaxSmallSize;
  void* q = growing && ensure_initialized() ? g_process.large.alloc(size, 0, false) : hak_malloc(size);
  if (q == nullptr) return nullptr;  // the old block stays valid
  memcpy(q, p, size < old_usable ? size : old_usable);
  hak_free(p);
  return q;
}

void* hak_reallocarray(void* p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return hak_realloc(p, total);
}

void* hak_aligned_alloc(size_t alignment, size_t size) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= kMinAlign) return allocate(size);
  return allocate_aligned(alignment, size);
}

int hak_posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  const int saved = errno;
  void* p = hak_aligned_alloc(alignment, size);
  if (p == nullptr) {
    const int err = errno;
    errno = saved;
    return err == 0 ? ENOMEM : err;
  }
  *out = p;
  return 0;
}

size_t hak_collect(void) {
  ThreadHeap* heap = this_thread_heap();
  if (heap == nullptr) return 0;
  flush_remote_frees(heap);  // this thread's pending frees reach their slabs first
  size_t released = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    released += g_process.slabs.collect_abandoned(heap, cls);
  }
  // Then what the budgets keep resident goes back, however recent.
  g_process.collected_bytes.fetch_add(release_retained_memory(), lockfree::MemoryOrder::relaxed);
  return released;
}

}  // extern "C"
