// Large blocks: requests above kMaxSmallSize (or with alignment a small
// class cannot give) get their own mapping (core/meta/large_header.h).
//
// Reserving whole granules costs address space, not memory: only touched
// pages are resident, and the slack lets realloc grow a block in place.
//
// Freed mappings go to LargeCache, a fixed array of atomic slots (put = CAS
// from empty, take = CAS to empty; a slot's value is the mapping address
// with its granule count in the low bits, so there is no ABA), bounded by
// HAKMEM_LARGE_CACHE_MB; beyond that they are unmapped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/meta/chunk_registry.h"
#include "core/meta/large_header.h"
#include "lockfree/decay.h"
#include "lockfree/default_atomics.h"

namespace hakmem {

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
  // Mappings in the cache (a scan of the slots: for statistics).
  uint64_t cached_count() const noexcept;

 private:
  template <class T>
  using Atomic = lockfree::DefaultAtomics::Atomic<T>;
  Atomic<uintptr_t> slots_[kSlots];
  Atomic<uint64_t> bytes_{0};
};

struct LargePolicy {
  size_t cache_limit = size_t{64} << 20;  // HAKMEM_LARGE_CACHE_MB
  // HAKMEM_MEM_DIET=2: a cached mapping's pages beyond its first granule go
  // back to the OS at once.
  bool decommit_cached = false;
  // A cached mapping unused this long is unmapped (HAKMEM_PURGE_MS; 0: kept
  // until reused or evicted).
  uint64_t purge_ns = 0;
};

class LargeAllocator {
 public:
  // Called once by process initialisation, before the first large block.
  void configure(ChunkRegistry* registry, const LargePolicy& policy) noexcept {
    registry_ = registry;
    policy_ = policy;
    decay_.configure(policy.purge_ns);
  }

  // Runs a purge pass if one is due (lockfree/decay.h). Called by alloc and
  // free, and by the background purger.
  void maybe_purge(uint64_t now_ns) noexcept {
    if (decay_.claim_pass(now_ns)) purge_expired(now_ns);
  }
  // Unmaps every cached mapping that has been cached for the decay time.
  // Each is taken out of the cache (LargeCache::take_any) for the moment it
  // is looked at; the others are put back. Returns the bytes unmapped.
  uint64_t purge_expired(uint64_t now_ns) noexcept;

  void* alloc(size_t size, size_t align, bool zero) noexcept;
  void free(LargeHeader* h) noexcept;
  // Resizes in place when the mapping has room; null if it has not.
  void* try_resize_in_place(LargeHeader* h, size_t new_size) noexcept;
  // Grows a block by moving its pages to a larger mapping (mremap, no copy).
  // Returns the block's new address, or null (the block is then unchanged).
  void* grow(LargeHeader* h, size_t new_size) noexcept;

  uint64_t live_bytes() const noexcept;  // mapped bytes of live blocks
  uint64_t live_count() const noexcept;
  uint64_t cached_bytes() const noexcept { return cache_.cached_bytes(); }
  uint64_t cached_count() const noexcept { return cache_.cached_count(); }
  size_t cache_limit() const noexcept { return policy_.cache_limit; }
  // Pages of cached mappings returned to the OS (decommitted), in total.
  uint64_t purged_bytes() const noexcept;
  // Mappings returned to the OS (unmapped), in total.
  uint64_t unmapped_bytes() const noexcept;
  uint64_t mapped_bytes() const noexcept;  // live and cached mappings

 private:
  LargeHeader* map(size_t mapping_size, size_t offset, size_t align) noexcept;
  void register_mapping(LargeHeader* h) noexcept;
  void unmap(LargeHeader* h) noexcept;

  using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;
  ChunkRegistry* registry_ = nullptr;
  LargePolicy policy_{};
  LargeCache cache_;
  lockfree::DecaySchedule decay_;
  Counter live_bytes_{0};
  Counter live_count_{0};
  Counter mapped_bytes_{0};
  Counter purged_bytes_{0};
  Counter unmapped_bytes_{0};
};

}  // namespace hakmem
