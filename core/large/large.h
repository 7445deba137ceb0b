// Large blocks: requests above kMaxSmallSize (or with alignment a small
// class cannot give) get their own mapping (core/meta/large_header.h).
//
// Reserving whole granules costs address space, not memory: only touched
// pages are resident, and the slack lets realloc grow a block in place.
//
// Freed blocks stay resident in LargeCache (lockfree/range_cache.h), a
// fixed array of atomic slots holding free granule ranges, bounded by
// HAKMEM_LARGE_CACHE_MB. An allocation takes the smallest cached range that
// is large enough and caches its tail granules again (split); a free merges
// its range with the cached ranges just before and just after it
// (coalesce). Reusing a cached range costs no page faults. Beyond the
// budget, and once cached for the decay time, ranges are unmapped.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/limit/memory_limit.h"
#include "core/meta/chunk_registry.h"
#include "core/meta/large_header.h"
#include "lockfree/decay.h"
#include "lockfree/default_atomics.h"
#include "lockfree/range_cache.h"

namespace hakmem {

// Free granule ranges; each has a LargeHeader (freed magic, its size in
// mapping_size, when it was cached in cached_at) at its base.
using LargeCache = lockfree::BasicRangeCache<lockfree::DefaultAtomics, lockfree::RangeCacheOrders,
                                             kChunkShift, 64>;

struct LargePolicy {
  size_t cache_limit = size_t{16} << 20;  // HAKMEM_LARGE_CACHE_MB
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
  // `limit` (may be null): the memory limit whose checks run in this
  // allocator's purge passes and whose pressure empties the cache's budget.
  void configure(ChunkRegistry* registry, const LargePolicy& policy,
                 MemoryLimit* limit = nullptr) noexcept {
    registry_ = registry;
    policy_ = policy;
    limit_ = limit != nullptr && limit->enabled() ? limit : nullptr;
    decay_.configure(policy.purge_ns);
  }

  // Runs a purge pass if one is due (lockfree/decay.h), and a memory-limit
  // check. Called by alloc and free, and by the background purger.
  void maybe_purge(uint64_t now_ns) noexcept {
    if (decay_.claim_pass(now_ns)) purge_expired(now_ns);
    if (limit_ != nullptr) limit_->maybe_check(now_ns);
  }
  // Unmaps every cached mapping that has been cached for the decay time.
  // Each is taken out of the cache (LargeCache::take_any) for the moment it
  // is looked at; the others are put back. Returns the bytes unmapped.
  uint64_t purge_expired(uint64_t now_ns) noexcept;
  // Unmaps every cached mapping, however recently cached (memory-limit
  // pressure, hak_collect). Returns the bytes unmapped.
  uint64_t unmap_all_cached() noexcept { return unmap_cached(0, true); }

  void* alloc(size_t size, size_t align, bool zero) noexcept;
  void free(LargeHeader* h) noexcept;
  // Resizes in place when the mapping has room, or when the granules after
  // it are a cached range (taken, and its tail cached again); null if not.
  void* try_resize_in_place(LargeHeader* h, size_t new_size) noexcept;
  // Grows a block by moving its pages to a larger mapping (mremap, no copy).
  // Returns the block's new address, or null (the block is then unchanged).
  void* grow(LargeHeader* h, size_t new_size) noexcept;

  uint64_t live_bytes() const noexcept;  // mapped bytes of live blocks
  uint64_t live_count() const noexcept;
  uint64_t cached_bytes() const noexcept { return uint64_t{cache_.cached_units()} << kChunkShift; }
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
  void unmap_range(uintptr_t base, size_t granules) noexcept;
  // Writes the header of a free range and caches it; unmaps it if the cache
  // has no room. `h` is owned by the caller.
  void cache_range(LargeHeader* h, size_t granules, uint64_t cached_at) noexcept;
  // Splits the granules of `r` (owned) beyond the first `granules` off as a
  // cached range of their own.
  void split_tail(lockfree::CachedRange r, size_t granules) noexcept;
  // Unmaps cached granules (whole ranges, or the tail of one) until
  // `granules` more fit under the budget, at most kEvictionsPerFree ranges.
  void make_room(size_t granules) noexcept;
  // Sets a live block's requested size, counting it in live_requested_ and
  // its recent peak.
  void set_requested(LargeHeader* h, size_t size) noexcept;
  // Takes every cached range out, unmaps those cached for the decay time
  // (all of them if `all`), and caches the others again.
  uint64_t unmap_cached(uint64_t now_ns, bool all) noexcept;
  bool checks_due() const noexcept { return decay_.enabled() || limit_ != nullptr; }
  // The cache's budget now, in granules.
  size_t limit_granules() const noexcept;
  // Fills the first granules of the fresh mapping `h` (`granules` long)
  // with cached pages moved there by mremap, so they need no page faults.
  // Returns the granules filled (from the start).
  size_t gather(LargeHeader* h, size_t granules) noexcept;

  using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;
  ChunkRegistry* registry_ = nullptr;
  LargePolicy policy_{};
  MemoryLimit* limit_ = nullptr;  // null: no memory limit
  LargeCache cache_;
  lockfree::DecaySchedule decay_;
  Counter live_bytes_{0};
  Counter live_count_{0};
  Counter live_requested_{0};  // the requested sizes of live blocks, summed
  Counter peak_{0};
  Counter peak_before_{0};
  Counter mapped_bytes_{0};
  Counter purged_bytes_{0};
  Counter unmapped_bytes_{0};
};

}  // namespace hakmem
