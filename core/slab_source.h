// Where slabs come from and go to: a size class's chunks.
//
// acquire_slab() tries, in order: adopting a slab an exited thread abandoned
// (claim on the chunk's adoptable bitmap), claiming a free slab (claim on the
// free bitmap), and expanding the class by one chunk (map, initialise,
// register, append to the class's ChunkList with a CAS on tail->next).
// Every step is lock-free; expansion has no upper bound but the OS.
#pragma once

#include "core/chunk.h"
#include "core/thread_heap.h"

namespace hakmem {

// A slab of class `cls` now owned by `heap`, with free or never-used
// blocks; null only when the OS refuses memory.
Slab* acquire_slab(ThreadHeap* heap, unsigned cls) noexcept;

// Claims slab i of chunk c from the adoptable bitmap for `heap` and drains
// what other threads freed into it. Null if another thread adopted it first.
Slab* try_adopt_slab(ThreadHeap* heap, Chunk* c, unsigned i) noexcept;

// Owner: the slab has no live blocks; make it claimable by anyone, and
// return its pages to the OS according to HAKMEM_MEM_DIET.
void release_slab(Slab* slab) noexcept;

// Owner (exiting): the slab has live blocks; make it adoptable.
void abandon_slab(Slab* slab) noexcept;

// Adopts every abandoned slab of `cls`, drains what other threads freed into
// it, releases the ones that became empty and abandons the rest again.
// Returns the number of slabs released.
unsigned collect_abandoned(ThreadHeap* heap, unsigned cls) noexcept;

// Maps `chunks` chunks of `cls` with every slab free (HAKMEM_PREWARM).
bool prewarm_class(unsigned cls, unsigned chunks) noexcept;

inline Chunk* chunk_of_slab(const Slab* s) { return chunk_of(s); }

}  // namespace hakmem
