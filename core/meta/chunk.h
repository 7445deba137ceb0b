// A chunk: 2 MiB, 2 MiB-aligned, one size class, a header and 32 slabs.
//
//   | color | header | slab 0 blocks ... | slab 1 | ... | slab 31 |
//   0               kChunkHeaderSize    64 KiB  128 KiB
//
// The header does not start at the chunk's first byte but 64 * color bytes
// in, where the color is taken from the chunk's address (chunk_of() computes
// it). Otherwise every chunk's descriptor of slab i would sit at the same
// address modulo 2 MiB, in the same cache set, and a thread using slab 0 of
// twenty classes would evict its own hot descriptors constantly.
//
// The header holds the chunk's class, its two slab bitmaps and the 32 slab
// descriptors. Slab 0's blocks start after the header; every other slab's
// blocks start at its 64 KiB boundary.
//
// A chunk of a medium class (size_classes.h) is cut into runs of
// k = run_slabs contiguous slabs at slab indices 0, k, 2k, ... (a run that
// would pass slab 31 is never used). A run is one "slab" to the rest of
// hakmem: the descriptor of its first slab (the run head) holds the run's
// geometry, owner and lists, and its blocks start at the run's first byte
// (after the header for run 0, which has no block when the header leaves
// less than one). The other slabs of a run have descriptors with no area,
// never owned. A run is free iff all k of its bits are set in free_slabs;
// it is claimed by one atomic AND of its k-bit mask (SlabBitmap::claim_run)
// and released by one OR (release_run). Only the head's bit is ever set in
// adoptable_slabs. Small classes are the case k = 1.
#pragma once

#include <cstdint>

#include "core/meta/geometry.h"
#include "core/meta/size_classes.h"
#include "core/meta/slab.h"
#include "lockfree/chunk_list.h"
#include "lockfree/default_atomics.h"
#include "lockfree/slab_bitmap.h"

namespace hakmem {

struct ThreadHeap;

inline constexpr uint64_t kChunkMagic = 0x68616b6d656d4348ull;  // "hakmemCH"

template <class P, class Heap>
struct BasicChunk : lockfree::ChunkListHook<BasicChunk<P, Heap>, P> {
  using Slab = BasicSlab<P, Heap>;

  // Constant after initialisation (which completes before the chunk is
  // published in the registry and linked into its class's ChunkList).
  uint64_t magic;  // kChunkMagic ^ address of the chunk
  uint32_t size_class;
  uint32_t block_size;
  uint32_t run_slabs;  // slabs per run: class_run_slabs(size_class), 1 if small

  // Bit i set: slab i may be claimed fresh (it has no live blocks).
  lockfree::SlabBitmap<P> free_slabs{0};
  // Bit i set: slab i was abandoned by an exiting thread with live blocks.
  lockfree::SlabBitmap<P> adoptable_slabs{0};
  // A hint, not a protocol: bit i set means slab (run head) i was released
  // with its pages resident and not purged since. Claims prefer those, so a
  // freed slab is reused warm while colder ones stay decommitted. Relaxed
  // RMWs only; the free bitmap's claim is what synchronises.
  typename P::template Atomic<uint32_t> resident_hint{0};

  Slab slabs[kSlabsPerChunk];
};

using Slab = BasicSlab<lockfree::DefaultAtomics, ThreadHeap>;
using Chunk = BasicChunk<lockfree::DefaultAtomics, ThreadHeap>;
using FreeBlock = Slab::Block;

inline constexpr unsigned kChunkColors = 16;
inline constexpr size_t kChunkColorStride = 64;
inline constexpr size_t kChunkHeaderSize =
    align_up(sizeof(Chunk) + (kChunkColors - 1) * kChunkColorStride, kPageSize);
static_assert(kChunkHeaderSize < kSlabSize / 2, "header must leave room in slab 0");

inline uintptr_t chunk_base(const void* p) { return reinterpret_cast<uintptr_t>(p) & ~kChunkMask; }
// Where the header of the chunk at `base` starts (see "color" above).
inline uintptr_t chunk_header_address(uintptr_t base) {
  return base + ((base >> kChunkShift) % kChunkColors) * kChunkColorStride;
}
// The header of the chunk containing p (any address inside the chunk).
inline Chunk* chunk_of(const void* p) {
  return reinterpret_cast<Chunk*>(chunk_header_address(chunk_base(p)));
}
inline unsigned slab_index_of(const void* p) {
  return unsigned((reinterpret_cast<uintptr_t>(p) & kChunkMask) >> kSlabShift);
}
inline uintptr_t slab_area_begin(const Chunk* c, unsigned i) {
  return chunk_base(c) + (i == 0 ? kChunkHeaderSize : i * kSlabSize);
}
// The end of the area of the run headed by slab i (slab i's end if small).
inline uintptr_t slab_area_end(const Chunk* c, unsigned i) {
  return chunk_base(c) + (i + c->run_slabs) * kSlabSize;
}
inline unsigned slab_capacity(const Chunk* c, unsigned i) {
  return unsigned((slab_area_end(c, i) - slab_area_begin(c, i)) / c->block_size);
}
inline unsigned slab_capacity(const Slab* s) { return unsigned(s->capacity); }
inline unsigned index_of_slab(const Chunk* c, const Slab* s) { return unsigned(s - c->slabs); }

// Runs (see the top of this file). A chunk of run length k has
// kSlabsPerChunk / k runs; slab i heads a run iff i % k == 0 and the run
// fits in the chunk.
inline unsigned runs_per_chunk(unsigned run_slabs) { return kSlabsPerChunk / run_slabs; }
inline bool is_run_head(const Chunk* c, unsigned i) {
  return i % c->run_slabs == 0 && i + c->run_slabs <= kSlabsPerChunk;
}
// The k bits of the run headed by slab i.
inline uint32_t run_mask(unsigned run_slabs, unsigned i) {
  const uint32_t k_bits = run_slabs >= 32 ? ~uint32_t{0} : (uint32_t{1} << run_slabs) - 1;
  return k_bits << i;
}
inline uint32_t run_mask(const Chunk* c, unsigned i) { return run_mask(c->run_slabs, i); }
// Bytes of address space of a run (what its pages can hold resident).
inline size_t run_bytes(const Chunk* c) { return size_t{c->run_slabs} * kSlabSize; }

}  // namespace hakmem
