// The hot path: malloc and free of a small block by the thread that owns its
// slab. Everything else (refill, remote free, large blocks, errors) is out of
// line, in refill.cc, core/heap/remote_free.cc and allocator.cc.
//
// malloc pops a list of the current slab's blocks that the heap itself holds
// (HotClass::free), so it touches only the heap and the block. free pushes
// the block onto its own slab's list, current or not; refill takes the
// current slab's list over when the heap's list runs dry. Neither uses an
// atomic read-modify-write or takes a lock.
#pragma once

#include "core/alloc/process.h"
#include "core/heap/remote_free.h"
#include "core/heap/thread_heap.h"
#include "core/meta/errors.h"
#include "core/meta/pointer.h"
#include "platform/compiler.h"

namespace hakmem {

void* refill_and_alloc(ThreadHeap* heap, unsigned cls) noexcept;
void local_free_slow(ThreadHeap* heap, Slab* s) noexcept;
// free of a block whose slab `heap` (t_heap, maybe null) does not own. The
// same parameters as free_remote, so the fast path's register use is that
// of a direct call to it.
void free_not_owned(SlabSource& source, ThreadHeap* heap, Slab* s, FreeBlock* b, uintptr_t tag,
                    const char* function) noexcept;

// Takes the first block of a non-empty heap list.
HAKMEM_ALWAYS_INLINE void* pop_hot(HotClass& hot) noexcept {
  FreeBlock* b = hot.free;
  hot.free = b->next.load();
  b->free_tag.store(0);  // live blocks never carry their free tag
  bump(hot.taken);
  return b;
}

HAKMEM_ALWAYS_INLINE void* small_alloc(ThreadHeap* heap, unsigned cls) noexcept {
  HotClass& hot = heap->hot[cls];
  if (HAKMEM_LIKELY(hot.free != nullptr)) return pop_hot(hot);
  return refill_and_alloc(heap, cls);
}

// Block `b` of slab `s`: a small block (PointerKind::kSmall).
HAKMEM_ALWAYS_INLINE void small_free(Slab* s, FreeBlock* b, const char* function) noexcept {
  const uintptr_t tag = g_process.tags.tag_for(b);
  if (HAKMEM_UNLIKELY(b->free_tag.load() == tag)) {
    return report_heap_error(HeapError::kDoubleFree, function, b);
  }
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && s->owner.load(lockfree::MemoryOrder::relaxed) == heap)) {
    // One rarely taken branch: the slab became empty, or (on the full
    // list) a quarter free (Slab::slow_at).
    if (HAKMEM_UNLIKELY(s->push_local(b, tag) == s->slow_at.load())) local_free_slow(heap, s);
    return;
  }
  free_not_owned(g_process.slabs, heap, s, b, tag, function);
}

}  // namespace hakmem
