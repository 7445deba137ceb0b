// A free by a thread that does not own the block's slab.
#pragma once

#include <cstdint>

#include "core/heap/slab_source.h"
#include "core/heap/thread_heap.h"
#include "core/meta/pointer.h"

namespace hakmem {

// Frees the small block `ptr` (classified, not free) whose slab `heap` (the
// calling thread's heap, or null) does not own: pushes it on the slab's
// remote list and tells the owner, or adopts the slab if its owner exited.
// `tag` is the block's free tag; `function` names the caller's entry point
// in error reports.
void free_remote(SlabSource& source, ThreadHeap* heap, const Pointer& ptr, uintptr_t tag,
                 const char* function) noexcept;

}  // namespace hakmem
