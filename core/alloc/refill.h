// The owner's slow paths around the fast path (refill.cc).
#pragma once

#include "core/heap/thread_heap.h"

namespace hakmem {

// Ends `current` status of class `cls`: the heap's list and count go back
// into the slab. Returns the slab, or null if the class had none.
Slab* retire_current(ThreadHeap* heap, unsigned cls) noexcept;

// Drains the slabs queued on the heap's notices (remote frees, reclaims):
// releases the empty and reclaimed ones. Owner only.
void take_reclaimed_and_notices(ThreadHeap* heap) noexcept;

}  // namespace hakmem
