// A free by a thread that does not own the block's slab.
#pragma once

#include <cstdint>

#include "core/heap/slab_source.h"
#include "core/heap/thread_heap.h"

namespace hakmem {

// Frees block `b` of slab `s` (a small block, classified and not free) that
// `heap` (the calling thread's heap, or null) does not own: adds it to the
// heap's batch of pending remote frees (or, with no heap or batching off,
// pushes it on the slab's remote list and tells the owner), or adopts the
// slab if its owner exited. The protocol is BasicRemoteFree
// (remote_free_protocol.h). `tag` is the block's free tag; `function` names the caller's entry
// point in error reports. Slab and block come by value, so that the fast
// path that calls this keeps them in registers.
void free_remote(SlabSource& source, ThreadHeap* heap, Slab* s, FreeBlock* b, uintptr_t tag,
                 const char* function) noexcept;

void flush_remote_batch(ThreadHeap* heap) noexcept;

// Pushes every block waiting in `heap`'s batch onto its slab's remote list
// (notifying owners as needed). Called by the heap's own thread.
inline void flush_remote_frees(ThreadHeap* heap) noexcept {
  if (heap->remote_batch.pending != 0) flush_remote_batch(heap);
}

}  // namespace hakmem
