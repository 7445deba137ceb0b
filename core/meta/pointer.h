// The one classification of a pointer handed to hakmem (invariant I4): in
// O(1), without dereferencing anything the registry does not vouch for.
//
//   registry kind of its granule -> for a chunk: its slab, then whether it
//   is a block start -> for a large mapping: whether it is the block start.
//
// A medium block (a block of a run of several slabs, chunk.h) that starts in
// its run's first slab is found like a small one. One that starts in a later
// slab of the run falls out of the first test (that slab's descriptor has no
// area) and is resolved, still in O(1), from the run head's geometry. The
// inline free fast paths use classify_in_first_slab, which leaves that step
// to the slow path, so that the small fast path is what it was.
//
// Whether the block is free (its free tag, or a large header's magic) is
// the caller's next question; `freed` answers it with the process's key.
// Every entry point (free, realloc, sized delete, usable size, owns) starts
// here.
#pragma once

#include <cstdint>

#include "core/meta/chunk.h"
#include "core/meta/chunk_registry.h"
#include "core/meta/errors.h"
#include "core/meta/large_header.h"
#include "platform/compiler.h"

namespace hakmem {

enum class PointerKind : uint8_t {
  kSmall,     // the start of a block in a chunk's slab (or a medium run)
  kLarge,     // the start of a large block, live or cached
  kInterior,  // in hakmem's memory but not a block start (or metadata)
  kForeign,   // not hakmem's: stack, global, another allocator's, null
};

struct Pointer {
  PointerKind kind;
  Chunk* chunk = nullptr;        // kSmall
  Slab* slab = nullptr;          // kSmall
  FreeBlock* block = nullptr;    // kSmall
  LargeHeader* large = nullptr;  // kLarge

  bool is_small() const { return kind == PointerKind::kSmall; }
  bool is_large() const { return kind == PointerKind::kLarge; }
  // Only for kSmall and kLarge: the block is free (a double free, or a use
  // after free). A small block carries its free tag while free.
  bool freed(const FreeTagKey& key) const {
    return is_small() ? block->free_tag.load() == key.tag_for(block) : large->freed();
  }
};

namespace detail {
inline Pointer classify_outside_chunks(GranuleKind granule, const void* p) {
  if (granule == kGranuleForeign) return {PointerKind::kForeign};
  if (granule == kGranuleLarge || granule == kGranuleLargeBelow) {
    if (LargeHeader* h = large_header_of(p, granule == kGranuleLargeBelow)) {
      return {PointerKind::kLarge, nullptr, nullptr, nullptr, h};
    }
  }
  return {PointerKind::kInterior};
}

// p is in chunk c but not a block start of its slab's descriptor s: a block
// of a medium run that starts after the run's first slab, or an interior
// pointer. The run head's area covers the whole run, and its block-start
// test is exact for any offset.
inline Pointer classify_in_run(Chunk* c, Slab* s, const void* p) {
  const unsigned k = c->run_slabs;
  if (k > 1) {
    const unsigned i = slab_index_of(p);
    Slab* head = &c->slabs[i - i % k];
    if (head->is_block_start(p)) {
      return {PointerKind::kSmall, c, head, static_cast<FreeBlock*>(const_cast<void*>(p))};
    }
    return {PointerKind::kInterior, c, head};
  }
  return {PointerKind::kInterior, c, s};
}
}  // namespace detail

// The free fast paths' classification: exact except that a medium block
// starting after its run's first slab comes back kInterior (with its chunk
// set). Those paths then take the slow path, which calls classify().
HAKMEM_ALWAYS_INLINE Pointer classify_in_first_slab(const ChunkRegistry& registry, const void* p) {
  const GranuleKind granule = registry.kind_of(p);
  if (HAKMEM_LIKELY(granule == kGranuleChunk)) {
    Chunk* c = chunk_of(p);
    Slab* s = &c->slabs[slab_index_of(p)];
    if (HAKMEM_LIKELY(s->is_block_start(p))) {
      return {PointerKind::kSmall, c, s, static_cast<FreeBlock*>(const_cast<void*>(p))};
    }
    return {PointerKind::kInterior, c, s};
  }
  return detail::classify_outside_chunks(granule, p);
}

// The same tests as classify_in_first_slab, with the medium-run step in
// place of its kInterior answer (one test of the kind per path, so that a
// caller's branch on the result folds into these).
HAKMEM_ALWAYS_INLINE Pointer classify(const ChunkRegistry& registry, const void* p) {
  const GranuleKind granule = registry.kind_of(p);
  if (HAKMEM_LIKELY(granule == kGranuleChunk)) {
    Chunk* c = chunk_of(p);
    Slab* s = &c->slabs[slab_index_of(p)];
    if (HAKMEM_LIKELY(s->is_block_start(p))) {
      return {PointerKind::kSmall, c, s, static_cast<FreeBlock*>(const_cast<void*>(p))};
    }
    return detail::classify_in_run(c, s, p);
  }
  return detail::classify_outside_chunks(granule, p);
}

// The heap error for a pointer that is neither a small nor a large block.
inline HeapError error_for_non_block(const Pointer& ptr) {
  return ptr.kind == PointerKind::kForeign ? HeapError::kNotOurs : HeapError::kInterior;
}

}  // namespace hakmem
