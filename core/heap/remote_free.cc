#include "core/heap/remote_free.h"

#include "core/heap/remote_free_protocol.h"
#include "core/meta/errors.h"
#include "platform/assert.h"
#include "platform/compiler.h"

namespace hakmem {

using lockfree::MemoryOrder;
using RemoteFree = BasicRemoteFree<Slab, ThreadHeap>;

namespace {

[[gnu::noinline]] void free_remote_slow(SlabSource& source, ThreadHeap* heap, Slab* s, FreeBlock* b,
                                        uintptr_t tag, const char* function) noexcept {
  // A block of a slab whose owner exited: adopt the slab (one claim on the
  // adoptable bitmap, the same price as a remote push), so this and later
  // frees into it are local, as a successor thread's frees usually are.
  const RemoteFreeOutcome outcome = RemoteFree::free_block(heap, s, b, tag, [&](Slab* a) {
    Chunk* c = chunk_of_slab(a);
    return source.try_adopt(heap, c, index_of_slab(c, a)) != nullptr;
  });
  switch (outcome) {
    case RemoteFreeOutcome::kFreeOfUnusedSlab:
      return report_heap_error(HeapError::kFreeOfUnusedSlab, function, b);
    case RemoteFreeOutcome::kAdopted: {
      const uint32_t used = s->push_local(b, tag);
      if (used == 0) {
        source.release(s);
      } else {
        slab_list_add(heap->slabs[s->size_class], s,
                       used <= s->unfull_at ? kOnPartialList : kOnFullList);
      }
      return;
    }
    case RemoteFreeOutcome::kBatched:
    case RemoteFreeOutcome::kPosted:
      break;
  }
  if (heap != nullptr) {
    bump(heap->remote_frees[s->size_class]);
  } else {
    source.head(s->size_class).remote_frees_of_exited_threads.fetch_add(1, MemoryOrder::relaxed);
  }
}

}  // namespace

void free_remote(SlabSource& source, ThreadHeap* heap, Slab* s, FreeBlock* b, uintptr_t tag,
                 const char* function) noexcept {
  HAKMEM_ASSERT(s->is_block_start(b), "free_remote gets a block start of its slab");
  // Most remote frees go to the slab the previous one of the class went to.
  if (HAKMEM_LIKELY(heap != nullptr) && RemoteFree::add_to_open_slot(heap, s, b, tag)) {
    bump(heap->remote_frees[s->size_class]);
    return;
  }
  free_remote_slow(source, heap, s, b, tag, function);
}

void flush_remote_batch(ThreadHeap* heap) noexcept { RemoteFree::flush(heap->remote_batch); }

}  // namespace hakmem
