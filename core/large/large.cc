#include "core/large/large.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "platform/assert.h"
#include "platform/os.h"

namespace hakmem {
namespace {

using lockfree::MemoryOrder;

constexpr size_t kHeaderRoom = kCacheLine;  // LargeHeader rounded to a cache line
static_assert(sizeof(LargeHeader) <= kHeaderRoom);

// Blocks of at least this many granules ask for transparent huge pages.
constexpr size_t kHugePageGranules = 2;

// A free unmaps at most this many cached ranges to make room for its own,
// which bounds the cost of one free.
constexpr int kEvictionsPerFree = 4;

using lockfree::CachedRange;

LargeHeader* header_at(uintptr_t a) { return reinterpret_cast<LargeHeader*>(a); }
uintptr_t address_of(const LargeHeader* h) { return reinterpret_cast<uintptr_t>(h); }

}  // namespace

// Maps `mapping_size` bytes whose header granule is `base` and whose block
// (at base + offset) is aligned to `align`.
LargeHeader* LargeAllocator::map(size_t mapping_size, size_t offset, size_t align) noexcept {
  void* base = nullptr;
  if (align <= kChunkSize) {
    base = os::map_aligned(mapping_size, kChunkSize);
  } else {
    // The block must be `align`-aligned and sit one granule above the header:
    // map with room for `align`, then trim both ends.
    const size_t span = mapping_size + align;
    void* raw = os::map_aligned(span, kChunkSize);
    if (raw != nullptr) {
      const uintptr_t r = reinterpret_cast<uintptr_t>(raw);
      const uintptr_t user = align_up(r + offset, align);
      const uintptr_t b = user - offset;
      if (b > r) os::unmap(raw, b - r);
      const uintptr_t end = r + span, used_end = b + mapping_size;
      if (end > used_end) os::unmap(reinterpret_cast<void*>(used_end), end - used_end);
      base = reinterpret_cast<void*>(b);
    }
  }
  if (base == nullptr) return nullptr;
  if (limit_ != nullptr) limit_->note_growth(mapping_size);
  // Blocks of several granules are usually written through: back them with
  // huge pages where the kernel allows (THP "madvise" mode).
  if (mapping_size >= kHugePageGranules * kChunkSize) os::advise_huge_pages(base, mapping_size);
  mapped_bytes_.fetch_add(mapping_size, MemoryOrder::relaxed);
  return static_cast<LargeHeader*>(base);
}

void LargeAllocator::register_mapping(LargeHeader* h) noexcept {
  const size_t granules = h->mapping_size >> kChunkShift;
  ChunkRegistry& r = *registry_;
  r.set(h, granules, kGranuleLargeInterior);
  if (h->user_offset >= kChunkSize) {
    r.set_one(reinterpret_cast<char*>(h) + kChunkSize, kGranuleLargeBelow);
  }
  r.set_one(h, kGranuleLarge);
}

void LargeAllocator::unmap(LargeHeader* h) noexcept {
  unmap_range(address_of(h), h->mapping_size >> kChunkShift);
}

void LargeAllocator::unmap_range(uintptr_t base, size_t granules) noexcept {
  const size_t size = granules << kChunkShift;
  registry_->set(reinterpret_cast<void*>(base), granules, kGranuleForeign);
  mapped_bytes_.fetch_sub(size, MemoryOrder::relaxed);
  unmapped_bytes_.fetch_add(size, MemoryOrder::relaxed);
  os::unmap(reinterpret_cast<void*>(base), size);
}

// A cached range's registry marks: kGranuleLarge on its first granule (its
// header), kGranuleLargeInterior on the others, as for a live block. Marks
// are written while the range is owned, before the put publishes it.
void LargeAllocator::cache_range(LargeHeader* h, size_t granules, uint64_t cached_at) noexcept {
  h->magic = kLargeFreedMagic;
  h->mapping_size = granules << kChunkShift;
  h->cached_at = cached_at;  // published to a later taker by the put's release CAS
  registry_->set_one(h, kGranuleLarge);
  if (!cache_.put({address_of(h), granules}, limit_granules())) unmap(h);
}

void LargeAllocator::split_tail(CachedRange r, size_t granules) noexcept {
  if (r.units <= granules) return;
  LargeHeader* tail = header_at(r.base + (granules << kChunkShift));
  tail->user_offset = kHeaderRoom;  // a stale pointer there finds a freed header
  tail->requested = 0;
  cache_range(tail, r.units - granules, header_at(r.base)->cached_at);
}

void LargeAllocator::make_room(size_t granules) noexcept {
  const size_t limit = limit_granules();
  for (int n = 0; n < kEvictionsPerFree; ++n) {
    const size_t cached = cache_.cached_units();
    if (cached + granules <= limit) return;
    const CachedRange v = cache_.take_any();
    if (v.empty()) return;
    const size_t excess = cached + granules - limit;
    if (v.units <= excess) {
      unmap_range(v.base, v.units);
      continue;
    }
    // Unmap only the excess, from the victim's end, and cache the rest again.
    unmap_range(v.base + ((v.units - excess) << kChunkShift), excess);
    cache_range(header_at(v.base), v.units - excess, header_at(v.base)->cached_at);
    return;
  }
}

namespace {

// Moves `granules` granules from `from` to `to` with mremap, as one call or,
// if the range spans several kernel mappings (a coalesced range), one call
// per granule (every mapping boundary is a granule boundary). Returns the
// granules moved, from the start.
size_t move_granules(uintptr_t from, uintptr_t to, size_t granules) noexcept {
  auto move = [](uintptr_t f, uintptr_t t, size_t bytes) {
    return mremap(reinterpret_cast<void*>(f), bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED,
                  reinterpret_cast<void*>(t)) != MAP_FAILED;
  };
  if (move(from, to, granules << kChunkShift)) return granules;
  size_t moved = 0;
  while (moved < granules && move(from + (moved << kChunkShift), to + (moved << kChunkShift), kChunkSize)) {
    ++moved;
  }
  return moved;
}

}  // namespace

size_t LargeAllocator::gather(LargeHeader* h, size_t granules) noexcept {
  // Moving pages into a window costs no page faults (granule-aligned huge
  // pages move as whole page-table entries), against a fault per page (or a
  // zeroed huge page) to touch fresh memory.
  const uintptr_t window = address_of(h);
  size_t filled = 0;
  for (unsigned n = 0; n < LargeCache::kSlots && filled < granules; ++n) {
    const CachedRange r = cache_.take(granules - filled, /*or_largest=*/true);
    if (r.empty()) break;
    const size_t use = r.units < granules - filled ? r.units : granules - filled;
    const uint64_t cached_at = header_at(r.base)->cached_at;
    // The moved granules' old addresses stop being hakmem's first.
    registry_->set(reinterpret_cast<void*>(r.base), use, kGranuleForeign);
    const size_t moved = move_granules(r.base, window + (filled << kChunkShift), use);
    mapped_bytes_.fetch_sub(moved << kChunkShift, MemoryOrder::relaxed);  // the window counts them
    filled += moved;
    if (r.units > moved) {  // what stayed behind is cached again
      const uintptr_t rest = r.base + (moved << kChunkShift);
      registry_->set(reinterpret_cast<void*>(rest), use - moved, kGranuleLargeInterior);
      LargeHeader* tail = header_at(rest);
      if (moved != 0) {
        tail->user_offset = kHeaderRoom;
        tail->requested = 0;
      }
      cache_range(tail, r.units - moved, cached_at);
    }
    if (moved < use) break;
  }
  return filled;
}

uint64_t LargeAllocator::purge_expired(uint64_t now_ns) noexcept {
  // The recent peak of live bytes moves on: the older interval's is dropped.
  peak_before_.store(peak_.exchange(live_requested_.load(MemoryOrder::relaxed), MemoryOrder::relaxed),
                     MemoryOrder::relaxed);
  return unmap_cached(now_ns, false);
}

uint64_t LargeAllocator::unmap_cached(uint64_t now_ns, bool all) noexcept {
  // Take every cached range out (at most the slot count), unmap the expired
  // ones, put the others back. A concurrent alloc may miss the cache
  // meanwhile and map afresh; correct, and once per interval at most.
  CachedRange keep[LargeCache::kSlots];
  unsigned kept = 0;
  uint64_t unmapped = 0;
  for (unsigned n = 0; n < LargeCache::kSlots; ++n) {
    const CachedRange r = cache_.take_any();  // acquire: cached_at, written before the put, is visible
    if (r.empty()) break;
    if (all || decay_.expired(header_at(r.base)->cached_at, now_ns)) {
      unmapped += uint64_t{r.units} << kChunkShift;
      unmap_range(r.base, r.units);
    } else {
      keep[kept++] = r;
    }
  }
  for (unsigned k = 0; k < kept; ++k) {
    if (!cache_.put(keep[k], limit_granules())) unmap_range(keep[k].base, keep[k].units);
  }
  return unmapped;
}

void* LargeAllocator::alloc(size_t size, size_t align, bool zero) noexcept {
  HAKMEM_ASSERT(registry_ != nullptr, "the large allocator is configured before use");
  if (checks_due()) maybe_purge(os::coarse_now_ns());
  const size_t offset = align >= kChunkSize ? kChunkSize : (align > kHeaderRoom ? align : kHeaderRoom);
  if (size > (size_t{1} << kAddressBits) - offset - kChunkSize) {
    errno = ENOMEM;
    return nullptr;
  }
  // At least one byte past the offset: with an offset of a whole granule
  // (alignment >= 2 MiB) and size 0 the block would otherwise start at the
  // end of its mapping, and register_mapping would mark the next granule,
  // which is not ours, as this block's.
  const size_t mapping_size = align_up(offset + (size == 0 ? 1 : size), kChunkSize);
  const size_t granules = mapping_size >> kChunkShift;
  LargeHeader* h = nullptr;
  bool fresh = false;
  if (align <= kChunkSize) {
    // The smallest cached range that is large enough; its tail granules are
    // cached again as a range of their own.
    const CachedRange r = cache_.take(granules);
    if (!r.empty()) {
      h = header_at(r.base);
      split_tail(r, granules);
    }
  }
  if (h == nullptr) {
    h = map(mapping_size, offset, align);
    if (h == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    // Cached pages are cheaper than fresh ones even when no one cached
    // range is large enough.
    fresh = align > kChunkSize || cache_.cached_units() == 0 || gather(h, granules) == 0;
  }
  h->mapping_size = mapping_size;
  h->user_offset = offset;
  h->requested = 0;
  set_requested(h, size);
  h->magic = kLargeMagic ^ reinterpret_cast<uintptr_t>(h);
  char* user = reinterpret_cast<char*>(h) + offset;
  register_mapping(h);  // a cached mapping's marks may be for another offset
  if (!fresh && zero) memset(user, 0, size);
  live_bytes_.fetch_add(h->mapping_size, MemoryOrder::relaxed);
  live_count_.fetch_add(1, MemoryOrder::relaxed);
  return user;
}

void LargeAllocator::free(LargeHeader* h) noexcept {
  HAKMEM_ASSERT(h->magic == (kLargeMagic ^ reinterpret_cast<uintptr_t>(h)), "a freed large block is live");
  live_bytes_.fetch_sub(h->mapping_size, MemoryOrder::relaxed);
  set_requested(h, 0);
  live_count_.fetch_sub(1, MemoryOrder::relaxed);
  h->magic = kLargeFreedMagic;
  const uint64_t now = checks_due() ? os::coarse_now_ns() : 0;
  // Cached ranges stay resident (reusing them costs no page faults); the
  // budget bounds what that keeps. Under HAKMEM_MEM_DIET=2 a freed block's
  // pages beyond its first granule go back to the OS at once.
  if (h->mapping_size > kChunkSize && policy_.decommit_cached) {
    os::decommit(reinterpret_cast<char*>(h) + kChunkSize, h->mapping_size - kChunkSize);
    purged_bytes_.fetch_add(h->mapping_size - kChunkSize, MemoryOrder::relaxed);
  }
  const size_t limit = limit_granules();
  const size_t granules = h->mapping_size >> kChunkShift;
  // An over-aligned block's mapping (header a granule below the block) is
  // not cached, nor one larger than the budget.
  if (h->user_offset >= kChunkSize || granules > limit) {
    if (limit_ != nullptr && limit_->in_pressure()) limit_->count_returned(h->mapping_size);
    unmap(h);
    if (now != 0) maybe_purge(now);
    return;
  }
  // Coalesce with the cached ranges just before and after the block. The
  // merged range's header is the first one's; the others' header granules
  // become interior.
  const uintptr_t begin = address_of(h);
  CachedRange r = cache_.take_adjacent({begin, granules}, [this, begin](CachedRange c) {
    // Inside the merged range only its first granule keeps kGranuleLarge: a
    // neighbour after the block loses its header granule's mark; one before
    // it makes the header granule just after it (the block's, or an earlier
    // neighbour's) interior.
    const uintptr_t g = c.base > begin ? c.base : LargeCache::end_of(c);
    registry_->set_one(reinterpret_cast<void*>(g), kGranuleLargeInterior);
  });
  if (r.units > limit) {  // merged past the budget: unmap the excess at the end
    unmap_range(r.base + (limit << kChunkShift), r.units - limit);
    r.units = limit;
  }
  // The newest range is the likeliest to be asked for again: make room for
  // it by unmapping cached granules.
  make_room(r.units);
  cache_range(header_at(r.base), r.units, now);
  if (now != 0) maybe_purge(now);
}

void* LargeAllocator::try_resize_in_place(LargeHeader* h, size_t new_size) noexcept {
  if (new_size <= h->usable_size()) {
    set_requested(h, new_size);
    return reinterpret_cast<char*>(h) + h->user_offset;
  }
  // Grow into the cached range just after the mapping, if it is large
  // enough; take 25% headroom from it where it has that much.
  const size_t offset = h->user_offset;
  if (offset >= kChunkSize || new_size > (size_t{1} << kAddressBits) - offset - kChunkSize) return nullptr;
  const size_t granules = h->mapping_size >> kChunkShift;
  const size_t need = (align_up(offset + new_size, kChunkSize) >> kChunkShift) - granules;
  const size_t want = (align_up(offset + new_size + new_size / 4, kChunkSize) >> kChunkShift) - granules;
  const uintptr_t end = address_of(h) + h->mapping_size;
  const CachedRange r = cache_.take_at(end, need);
  if (r.empty()) return nullptr;
  const size_t extra = r.units < want ? r.units : want;
  split_tail(r, extra);
  registry_->set_one(reinterpret_cast<void*>(end), kGranuleLargeInterior);
  h->mapping_size += extra << kChunkShift;
  set_requested(h, new_size);
  live_bytes_.fetch_add(extra << kChunkShift, MemoryOrder::relaxed);
  return reinterpret_cast<char*>(h) + offset;
}

void* LargeAllocator::grow(LargeHeader* h, size_t new_size) noexcept {
  // Move the pages instead of copying them: reserve a granule-aligned window
  // of the new size, then mremap the old mapping onto its start (the kernel
  // replaces the reservation). The block keeps its offset in the mapping.
  if (h->user_offset >= kChunkSize) return nullptr;  // over-aligned: copy instead
  const size_t offset = h->user_offset;
  if (new_size > (size_t{1} << kAddressBits) - offset - kChunkSize) return nullptr;
  const size_t old_size = h->mapping_size;
  // 25% headroom so a block grown step by step moves rarely.
  const size_t mapping_size = align_up(offset + new_size + new_size / 4, kChunkSize);
  void* target = os::map_aligned(mapping_size, kChunkSize);
  if (target == nullptr) return nullptr;
  if (limit_ != nullptr && mapping_size > old_size) limit_->note_growth(mapping_size - old_size);
  if (mapping_size >= kHugePageGranules * kChunkSize) os::advise_huge_pages(target, mapping_size);
  // The old granules stop being hakmem's before their pages leave: once a
  // granule is a hole, another thread's mmap may be placed there and
  // register it, and a later store would unmark that thread's block.
  const size_t old_granules = old_size >> kChunkShift;
  registry_->set(h, old_granules, kGranuleForeign);
  // A block carved from coalesced or gathered ranges may span several
  // kernel mappings: move_granules moves those granule by granule. If it
  // stops early (the kernel refuses a move), the rest is copied: the moved
  // granules' old addresses may already belong to someone else, so nothing
  // moves back.
  const size_t moved = move_granules(address_of(h), reinterpret_cast<uintptr_t>(target), old_granules);
  if (moved < old_granules) {
    const size_t done = moved << kChunkShift;
    memcpy(static_cast<char*>(target) + done, reinterpret_cast<char*>(h) + done, old_size - done);
    os::unmap(reinterpret_cast<char*>(h) + done, old_size - done);
  }
  auto* nh = static_cast<LargeHeader*>(target);
  nh->mapping_size = mapping_size;
  set_requested(nh, new_size);  // the header moved with the pages
  nh->magic = kLargeMagic ^ reinterpret_cast<uintptr_t>(nh);
  register_mapping(nh);
  mapped_bytes_.fetch_add(mapping_size - old_size, MemoryOrder::relaxed);
  live_bytes_.fetch_add(mapping_size - old_size, MemoryOrder::relaxed);
  return reinterpret_cast<char*>(nh) + offset;
}

void LargeAllocator::set_requested(LargeHeader* h, size_t size) noexcept {
  const size_t before = h->requested;
  h->requested = size;
  if (size < before) {
    live_requested_.fetch_sub(before - size, MemoryOrder::relaxed);
    return;
  }
  const uint64_t live = live_requested_.fetch_add(size - before, MemoryOrder::relaxed) + (size - before);
  uint64_t peak = peak_.load(MemoryOrder::relaxed);
  // Relaxed: the peak is a heuristic for the budget and orders nothing.
  while (peak < live && !peak_.compare_exchange_weak(peak, live, MemoryOrder::relaxed, MemoryOrder::relaxed)) {
  }
}

// HAKMEM_LARGE_CACHE_MB, plus, while cached ranges decay (HAKMEM_PURGE_MS
// on, HAKMEM_MEM_DIET=1), what live blocks have given back since their
// recent peak: the peak of the bytes live large blocks were asked for (not
// their mappings: a 40 KiB block's granule is mostly untouched) over the
// current and the previous purge interval, minus those bytes now. Cached
// plus live bytes then stay under that peak plus HAKMEM_LARGE_CACHE_MB, so
// a program whose large working set moves within its recent size reuses
// resident pages instead of unmapping them on one free and faulting fresh
// ones on the next allocation. When the working set shrinks, the peak
// follows it within two intervals and purge passes unmap what exceeds the
// budget. Under the memory limit's pressure the budget is 0.
size_t LargeAllocator::limit_granules() const noexcept {
  if (limit_ != nullptr && limit_->in_pressure()) return 0;  // memory-limit pressure: no cache
  uint64_t limit = policy_.cache_limit;
  if (limit != 0 && decay_.enabled() && !policy_.decommit_cached) {
    const uint64_t a = peak_.load(MemoryOrder::relaxed), b = peak_before_.load(MemoryOrder::relaxed);
    const uint64_t peak = a > b ? a : b, live = live_requested_.load(MemoryOrder::relaxed);
    if (peak > live) limit += peak - live;
  }
  return limit >> kChunkShift;
}

uint64_t LargeAllocator::live_bytes() const noexcept { return live_bytes_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::live_count() const noexcept { return live_count_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::mapped_bytes() const noexcept { return mapped_bytes_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::purged_bytes() const noexcept { return purged_bytes_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::unmapped_bytes() const noexcept {
  return unmapped_bytes_.load(MemoryOrder::relaxed);
}

}  // namespace hakmem
