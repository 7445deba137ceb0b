#include "core/heap/remote_free.h"

#include "core/meta/errors.h"
#include "lockfree/notify_queue.h"
#include "platform/assert.h"
#include "platform/compiler.h"

namespace hakmem {

using lockfree::MemoryOrder;

void free_remote(SlabSource& source, ThreadHeap* heap, Slab* s, FreeBlock* b, uintptr_t tag,
                 const char* function) noexcept {
  HAKMEM_ASSERT(s->is_block_start(b), "free_remote gets a block start of its slab");
  Chunk* c = chunk_of_slab(s);
  const uint8_t state = s->state.load(MemoryOrder::relaxed);
  if (HAKMEM_UNLIKELY(state == kSlabFree)) {
    return report_heap_error(HeapError::kFreeOfUnusedSlab, function, b);
  }
  // A block of a slab whose owner exited: adopt the slab (one claim on the
  // adoptable bitmap, the same price as a remote push), so this and later
  // frees into it are local, as a successor thread's frees usually are.
  if (state == kSlabAbandoned && heap != nullptr) {
    if (source.try_adopt(heap, c, index_of_slab(c, s)) == s) {
      const uint32_t used = s->push_local(b, tag);
      if (used == 0) {
        source.release(s);
      } else {
        slab_list_push(heap->slabs[c->size_class], s,
                       used <= s->unfull_at ? kOnPartialList : kOnFullList);
      }
      return;
    }
  }
  if (s->push_remote(b, tag) && lockfree::NotifyQueue<Slab>::try_claim(s)) {
    // The list was empty and the slab is not queued yet: tell its owner.
    // A stale owner is safe (heaps are never unmapped, and an owner ignores
    // notices for slabs it no longer owns) but delays the blocks: the slab
    // stays queued on the stale heap until that heap drains, and the real
    // owner finds them when it uses the slab or in its backstop scan
    // (refill.cc, next_slab). An abandoned slab needs no notice, its adopter
    // drains it.
    ThreadHeap* owner = s->owner.load(MemoryOrder::relaxed);
    if (owner == nullptr) {
      // Confirm with an RMW, ordered against an adopter's exchange in
      // take_ownership: a relaxed load may miss an adoption that finished.
      s->owner.compare_exchange_strong(owner, nullptr, MemoryOrder::acq_rel,
                                       MemoryOrder::acquire);
    }
    if (owner != nullptr) {
      owner->remote_notices.push_claimed(s);
    } else {
      lockfree::NotifyQueue<Slab>::unclaim(s);
    }
  }
  if (heap != nullptr) {
    bump(heap->remote_frees[c->size_class]);
  } else {
    source.head(c->size_class).remote_frees_of_exited_threads.fetch_add(1, MemoryOrder::relaxed);
  }
}

}  // namespace hakmem
