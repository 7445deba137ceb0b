// Large blocks: requests above kMaxSmallSize (or with alignment a small
// class cannot give) get their own mapping.
//
// A mapping is a whole number of 2 MiB granules starting at a granule, with
// a LargeHeader at its start and the block after it, so free() finds the
// header from the pointer in O(1) through the registry. Reserving whole
// granules costs address space, not memory: only touched pages are resident,
// and the slack lets realloc grow a block in place.
//
// Freed mappings go to LargeCache, a fixed array of atomic slots (put = CAS
// from empty, take = CAS to empty; a slot's value is the mapping address
// with its granule count in the low bits, so there is no ABA), bounded by
// HAKMEM_LARGE_CACHE_MB; beyond that they are unmapped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/chunk_registry.h"
#include "core/geometry.h"
#include "lockfree/default_atomics.h"

namespace hakmem {

inline constexpr uint64_t kLargeMagic = 0x68616b6d656d4c47ull;       // "hakmemLG"
inline constexpr uint64_t kLargeFreedMagic = 0x68616b6d656d4c46ull;  // "hakmemLF"

struct LargeHeader {
  uint64_t magic;         // kLargeMagic ^ address while live, kLargeFreedMagic when cached
  size_t mapping_size;    // bytes, a multiple of kChunkSize
  size_t user_offset;     // block address - header address
  size_t requested;       // bytes asked for
};

class LargeCache {
 public:
  static constexpr unsigned kSlots = 64;
  // The smallest cached mapping of `granules` to 2 * `granules`, or null.
  LargeHeader* take(size_t granules) noexcept;
  // Caches the mapping if it fits under `limit` bytes; false if not.
  bool put(LargeHeader* h, size_t limit) noexcept;
  // Any cached mapping (to evict), or null.
  LargeHeader* take_any() noexcept;
  uint64_t cached_bytes() const noexcept;

 private:
  template <class T>
  using Atomic = lockfree::DefaultAtomics::Atomic<T>;
  Atomic<uintptr_t> slots_[kSlots];
  lockfree::DefaultAtomics::Atomic<uint64_t> bytes_{0};
};

void* large_alloc(size_t size, size_t align, bool zero) noexcept;
void large_free(LargeHeader* h) noexcept;
size_t large_usable_size(const LargeHeader* h) noexcept;
// Resizes in place when the mapping has room; null if it has not.
void* large_try_resize_in_place(LargeHeader* h, size_t new_size) noexcept;

// Grows a block by moving its pages to a larger mapping (mremap, no copy).
// Returns the block's new address, or null (the block is then unchanged).
void* large_grow(LargeHeader* h, size_t new_size) noexcept;

// large_header_of() for a pointer whose granule the registry classified as
// `kind`; null unless `kind` is a large block's first granule.
LargeHeader* large_header_for(const void* p, GranuleKind kind) noexcept;

// For a pointer the registry attributes to a large mapping: its header if the
// pointer is exactly a live or cached block's start, else null.
LargeHeader* large_header_of(const void* p, bool header_below) noexcept;

uint64_t large_live_bytes() noexcept;
uint64_t large_live_count() noexcept;

}  // namespace hakmem
