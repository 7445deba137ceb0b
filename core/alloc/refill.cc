// Refill: what malloc does when the heap's list of the current slab's blocks
// is empty, and what free does when a slab becomes empty or unfull. Owner
// only; no atomic RMW but the slab source's claims.
#include <errno.h>

#include "core/alloc/fast_path.h"
#include "core/alloc/refill.h"
#include "platform/assert.h"

namespace hakmem {

using lockfree::MemoryOrder;

namespace {

// Every this many refills of a class with full slabs and no partial one, the
// owner looks at all its full slabs (the backstop in next_slab).
constexpr uint32_t kFullScanInterval = 256;

// How much of a slab one refill carves. The blocks of the first batch are
// the ones a steady malloc/free loop of the class keeps cycling through
// (free returns them to the slab, the next refill takes them all), so
// the batch sets how often the loop refills: 16 KiB is 16 blocks of 1 KiB
// or 64 of 256 B, and still fits in L1 beside the program's data.
constexpr size_t kCarveBytes = 4 * kPageSize;

// Turns up to kCarveBytes of the slab's never-used blocks into free ones,
// pushed onto `list`. Returns how many.
size_t carve_some(Slab* s, FreeBlock*& list) noexcept {
  uintptr_t at = s->carve.load();
  const uintptr_t end = s->carve_end.load();
  if (at >= end) return 0;
  const size_t bs = s->block_size;
  size_t n = bs >= kCarveBytes ? 1 : kCarveBytes / bs;
  const size_t limit = hot_cache_limit(s->size_class);
  if (limit != 0 && n > limit) n = limit;
  if (n > (end - at) / bs) n = (end - at) / bs;
  HAKMEM_ASSERT(at + n * bs <= end && end <= s->area_begin + s->area_bytes,
                "carving stays inside the slab's area");
  FreeBlock* head = reinterpret_cast<FreeBlock*>(at);
  FreeBlock* b = head;
  // Carved blocks carry their free tag like every other free block, so a
  // stray free of one is caught as a double free. Without it, a block of a
  // slab whose pages were returned to the OS (tags zeroed) and that was
  // claimed again could be freed twice unnoticed and handed out twice.
  for (size_t k = 1; k < n; ++k) {
    FreeBlock* next = reinterpret_cast<FreeBlock*>(at + k * bs);
    b->next.store(next);
    b->free_tag.store(g_process.tags.tag_for(b));
    b = next;
  }
  b->next.store(list);
  b->free_tag.store(g_process.tags.tag_for(b));
  list = head;
  s->carve.store(at + n * bs);
  return n;
}

// Makes `s` (owned, on no list) the class's current slab.
void make_current(ThreadHeap* heap, unsigned cls, Slab* s) noexcept {
  HAKMEM_ASSERT(s->owner.load(MemoryOrder::relaxed) == heap && s->list.load() == kOnNoList,
                "the current slab is owned by its heap and on no heap list");
  HAKMEM_ASSERT(s->size_class == cls, "the current slab is of its class");
  HotClass& hot = heap->hot[cls];
  HAKMEM_ASSERT(hot.free == nullptr, "the heap's list is empty when the current slab changes");
  hot.current = s;
}

}  // namespace

Slab* retire_current(ThreadHeap* heap, unsigned cls) noexcept {
  HotClass& hot = heap->hot[cls];
  Slab* s = hot.current;
  if (s == empty_slab()) return nullptr;
  HAKMEM_ASSERT(s->owner.load(MemoryOrder::relaxed) == heap, "the current slab is owned by its heap");
  HAKMEM_ASSERT(hot.free == nullptr, "the heap's list is empty (refill) or returned (exit)");
  hot.current = empty_slab();
  return s;
}

namespace {

// Moves a listed slab that has free blocks again to the partial list, or
// releases it if all its blocks are free.
void unfull(ThreadHeap* heap, Slab* s) noexcept {
  HAKMEM_ASSERT(heap->hot[s->size_class].current != s, "the current slab is on no heap list");
  ClassSlabs& cc = heap->slabs[s->size_class];
  slab_list_remove(cc, s);
  if (s->used_count() == 0) {
    g_process.slabs.release(s);
  } else {
    slab_list_push(cc, s, kOnPartialList);
  }
}

// Drains the slabs remote freers queued on this heap's notices. A slab may
// have changed hands since it was queued; only our own full ones matter
// (the current and partial ones are drained when they are used).
void take_remote_notices(ThreadHeap* heap) noexcept {
  drain_notices(heap, [heap](Slab* s) {
    if (s->list.load() != kOnFullList) return;
    if (s->drain_remote() > 0) unfull(heap, s);
  });
}

// Another owned slab with free blocks, or a new one from the class.
Slab* next_slab(ThreadHeap* heap, unsigned cls) noexcept {
  ClassSlabs& cc = heap->slabs[cls];
  if (!heap->remote_notices.empty()) take_remote_notices(heap);
  // Backstop for a notice that went astray (queued on the heap of a
  // slab's previous owner): now and then, look at every full slab.
  if (cc.full != nullptr && cc.partial == nullptr && ++cc.refills % kFullScanInterval == 0) {
    for (Slab* s = cc.full; s != nullptr;) {
      Slab* next = s->next.load();
      if ((!s->remote.empty() && s->drain_remote() > 0) || s->free.load() != nullptr) unfull(heap, s);
      s = next;
    }
  }
  if (Slab* s = slab_list_pop(cc, kOnPartialList)) {
    s->drain_remote();
    return s;
  }
  return g_process.slabs.acquire(heap, cls);
}

// Refills the heap's list of the class (which is empty) from the current
// slab `s`: blocks freed into it (by the owner, once its heap's list was
// full, or from the heap's list on its way back), then blocks other threads
// freed, then never-used blocks (at most the list's limit). The slab counts
// what the heap takes as used. Returns false if the slab has none left.
bool take_free_blocks(Slab* s, HotClass& hot) noexcept {
  if (s->free.load() == nullptr) s->drain_remote();
  uint32_t n = 0;
  if (FreeBlock* list = s->free.load()) {
    const uint32_t carved = uint32_t((s->carve.load() - s->area_begin) / s->block_size);
    n = carved - s->used_count();
    hot.free = list;
    s->free.store(nullptr);
  } else {
    n = uint32_t(carve_some(s, hot.free));
  }
  s->set_used(s->used_count() + n);
  hot.room.store(int64_t(hot_cache_limit(s->size_class)) - n, MemoryOrder::relaxed);
  return n != 0;
}


}  // namespace

// The current slab's list is empty: take what other threads freed into it,
// carve more of it, or move on to another slab.
void* refill_and_alloc(ThreadHeap* heap, unsigned cls) noexcept {
  // Bounds how long this thread's remote frees wait in its batch, and makes
  // sure it never adopts (next_slab) a slab it holds pending blocks of.
  flush_remote_frees(heap);
  ClassSlabs& cc = heap->slabs[cls];
  HotClass& hot = heap->hot[cls];
  cc.used = true;
  Slab* s = hot.current;
  if (s != empty_slab()) {
    if (take_free_blocks(s, hot)) return pop_hot(hot);
    slab_list_push(cc, retire_current(heap, cls), kOnFullList);  // every block is out
  }
  s = next_slab(heap, cls);
  if (s == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  make_current(heap, cls, s);
  take_free_blocks(s, hot);  // next_slab returns slabs with free or never-used blocks
  return pop_hot(hot);
}

void return_hot_blocks(ThreadHeap* heap, unsigned cls) noexcept {
  HotClass& hot = heap->hot[cls];
  FreeBlock* list = hot.free;
  hot.free = nullptr;
  hot.room.store(int64_t(hot_cache_limit(cls)), MemoryOrder::relaxed);
  while (list != nullptr) {
    FreeBlock* b = list;
    list = b->next.load();
    Slab* s = classify(g_registry, b).slab;
    if (s->push_local(b, b->free_tag.load()) == s->slow_at.load()) local_free_slow(heap, s);
  }
}

// The slab became empty, or is full with a quarter free now.
void local_free_slow(ThreadHeap* heap, Slab* s) noexcept {
  // The current slab's own count is only part of its used count (the rest
  // is in the heap); it is never released while current.
  if (heap->hot[s->size_class].current == s) return;
  unfull(heap, s);
}

}  // namespace hakmem
