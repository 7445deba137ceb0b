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

// Every this many slow calls, a refill also runs the slab source's time
// checks (purge, reclaim, memory limit): a thread that only cycles blocks
// through its current slabs never acquires or releases a slab, the other
// places that run them, yet its allocation volume still drives them.
constexpr uint64_t kChecksEvery = 64;

// Turns up to kCarveBytes of the slab's never-used blocks into free ones,
// pushed onto `list`.
void carve_some(Slab* s, FreeBlock*& list) noexcept {
  uintptr_t at = s->carve.load();
  const uintptr_t end = s->carve_end.load();
  if (at >= end) return;
  const size_t bs = s->block_size;
  size_t n = bs >= kCarveBytes ? 1 : kCarveBytes / bs;
  if (n > (end - at) / bs) n = (end - at) / bs;
  HAKMEM_ASSERT(at + n * bs <= end && end <= s->area_end(),
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
}

// Makes `s` (owned, on no list) the class's current slab.
void make_current(ThreadHeap* heap, unsigned cls, Slab* s) noexcept {
  HAKMEM_ASSERT(s->owner.load(MemoryOrder::relaxed) == heap && s->list.load() == kOnNoList,
                "the current slab is owned by its heap and on no heap list");
  HAKMEM_ASSERT(s->size_class == cls, "the current slab is of its class");
  HotClass& hot = heap->hot[cls];
  hot.current = s;
  hot.free = nullptr;
  hot.taken.store(0, MemoryOrder::relaxed);
}

}  // namespace

Slab* retire_current(ThreadHeap* heap, unsigned cls) noexcept {
  HotClass& hot = heap->hot[cls];
  Slab* s = hot.current;
  if (s == empty_slab()) return nullptr;
  HAKMEM_ASSERT(s->owner.load(MemoryOrder::relaxed) == heap, "the current slab is owned by its heap");
  s->set_used(s->used_count() + uint32_t(hot.taken.load(MemoryOrder::relaxed)));
  if (FreeBlock* list = hot.free) {
    FreeBlock* last = list;
    while (FreeBlock* next = last->next.load()) last = next;
    last->next.store(s->free.load());
    s->free.store(list);
  }
  hot.free = nullptr;
  hot.current = empty_slab();
  hot.taken.store(0, MemoryOrder::relaxed);
  return s;
}

namespace {

// Owner: `s` was reclaimed while listed (owner_take said kReclaimed, so the
// owner holds it again): off its list and back to the chunk.
void release_reclaimed(ThreadHeap* heap, Slab* s) noexcept {
  slab_list_remove(heap->slabs[s->size_class], s);
  g_process.slabs.release_reclaimed(s);
}

// A listed slab whose used count fell (a local free made it empty or a
// quarter free): released if empty, else moved from the full to the partial
// list. Releasing takes the slab back from reclaimers first; one that holds
// it either reclaims it (and tells us) or gives it back to a later pass.
void unfull(ThreadHeap* heap, Slab* s) noexcept;

// Gives a listed slab the owner holds again back to its chunk: a reclaimed
// one (its pages returned already), or one whose blocks are all free.
void release_listed(ThreadHeap* heap, Slab* s, bool reclaimed) noexcept {
  if (reclaimed) return release_reclaimed(heap, s);
  slab_list_remove(heap->slabs[s->size_class], s);
  g_process.slabs.release(s);
}

void unfull(ThreadHeap* heap, Slab* s) noexcept {
  HAKMEM_ASSERT(heap->hot[s->size_class].current != s, "the current slab is on no heap list");
  ClassSlabs& cc = heap->slabs[s->size_class];
  if (s->used_count() == 0) {
    IdleReclaim::release_if_taken(s, [heap](Slab* x, bool r) { release_listed(heap, x, r); });
    return;
  }
  if (s->list.load() == kOnFullList) {
    slab_list_remove(cc, s);  // the reclaim word stays as it is
    slab_list_push(cc, s, kOnPartialList);
  }
}

// Owner: drains a listed slab that received remote frees, taking it back
// from reclaimers for the drain (IdleReclaim::drain_listed). Returns false
// if a reclaimer holds it.
bool drain_listed(ThreadHeap* heap, Slab* s) noexcept {
  bool released = false;
  const bool done = IdleReclaim::drain_listed(s, [heap, &released](Slab* x, bool r) {
    release_listed(heap, x, r);
    released = true;
  });
  if (done && !released && s->list.load() == kOnFullList && s->used_count() <= s->unfull_at) {
    unfull(heap, s);
  }
  return done;
}

// Drains the slabs remote freers (and reclaimers) queued on this heap's
// notices. A slab may have changed hands since it was queued; only our own
// listed ones matter (the current one is drained when it is used). One a
// reclaimer holds is queued again, for the next drain.
void take_remote_notices(ThreadHeap* heap) noexcept {
  drain_notices(heap, [heap](Slab* s) {
    if (s->list.load() == kOnNoList) return;
    if (!drain_listed(heap, s)) IdleReclaim::renotify(heap, s);
  });
}

void take_notices_if_any(ThreadHeap* heap) noexcept {
  if (!heap->remote_notices.empty()) take_remote_notices(heap);
}

// Another owned slab with free blocks, or a new one from the class.
Slab* next_slab(ThreadHeap* heap, unsigned cls) noexcept {
  ClassSlabs& cc = heap->slabs[cls];
  take_notices_if_any(heap);
  // Backstop for a notice that went astray (queued on the heap of a
  // slab's previous owner): now and then, look at every full slab.
  if (cc.full != nullptr && cc.partial == nullptr && ++cc.refills % kFullScanInterval == 0) {
    for (Slab* s = cc.full; s != nullptr;) {
      Slab* next = s->next.load();
      if (!s->remote.empty()) {
        drain_listed(heap, s);
      } else if (s->free.load() != nullptr) {
        unfull(heap, s);
      }
      s = next;
    }
  }
  // The first partial slab no reclaimer holds.
  for (Slab* s = cc.partial; s != nullptr;) {
    Slab* next = s->next.load();
    switch (IdleReclaim::owner_take(s)) {
      case OwnerTake::kTaken:
        slab_list_remove(cc, s);
        s->drain_remote();
        return s;
      case OwnerTake::kReclaimed:
        release_reclaimed(heap, s);
        break;
      case OwnerTake::kBusy:
        break;
    }
    s = next;
  }
  return g_process.slabs.acquire(heap, cls);
}

// Refills the heap's list of the current slab `s` (which is empty) from the
// slab: blocks the owner freed into it, then blocks other threads freed,
// then never-used blocks. Returns false if the slab has none left.
bool take_free_blocks(Slab* s, HotClass& hot) noexcept {
  if (s->free.load() == nullptr) s->drain_remote();
  hot.free = s->free.load();
  s->free.store(nullptr);
  if (hot.free == nullptr) carve_some(s, hot.free);
  return hot.free != nullptr;
}


}  // namespace

// The current slab's list is empty: take what other threads freed into it,
// carve more of it, or move on to another slab.
void* refill_and_alloc(ThreadHeap* heap, unsigned cls) noexcept {
  // Bounds how long this thread's remote frees wait in its batch, and makes
  // sure it never adopts (next_slab) a slab it holds pending blocks of.
  flush_remote_frees(heap);
  bump(heap->slow_calls);
  if (heap->slow_calls.load(MemoryOrder::relaxed) % kChecksEvery == 0) {
    g_process.slabs.run_due_checks();
  }
  // Slabs other threads freed into, or reclaimed, in any class: a thread
  // that allocates anywhere returns them within its next refill.
  take_notices_if_any(heap);
  ClassSlabs& cc = heap->slabs[cls];
  HotClass& hot = heap->hot[cls];
  cc.used = true;
  Slab* s = hot.current;
  if (s != empty_slab()) {
    if (take_free_blocks(s, hot)) return pop_hot(hot);
    slab_list_add(cc, retire_current(heap, cls), kOnFullList);  // every block is out
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

// The slab became empty, or is full with a quarter free now.
void local_free_slow(ThreadHeap* heap, Slab* s) noexcept {
  // The current slab's own count is only part of its used count (the rest
  // is in the heap); it is never released while current.
  bump(heap->slow_calls);
  if (heap->hot[s->size_class].current != s) unfull(heap, s);
  take_notices_if_any(heap);
}

void take_reclaimed_and_notices(ThreadHeap* heap) noexcept { take_notices_if_any(heap); }

}  // namespace hakmem
