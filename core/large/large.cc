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

// Granule count of a cache slot value lives in the low bits (mapping
// addresses are granule-aligned).
constexpr uintptr_t kGranuleBits = kChunkMask;

// Blocks of at least this many granules ask for transparent huge pages.
constexpr size_t kHugePageGranules = 2;

// A cached mapping serves requests of 1/kLargestFit of its size and up.
constexpr size_t kLargestFit = 2;

// A take retries this often when other threads take its best fit first.
constexpr int kTakeAttempts = 4;
// A free unmaps at most this many older cached mappings to make room for
// its own, which bounds the cost of one free.
constexpr int kEvictionsPerFree = 4;

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
  const size_t size = h->mapping_size;
  registry_->set(h, size >> kChunkShift, kGranuleForeign);
  mapped_bytes_.fetch_sub(size, MemoryOrder::relaxed);
  unmapped_bytes_.fetch_add(size, MemoryOrder::relaxed);
  os::unmap(h, size);
}

LargeHeader* LargeCache::take(size_t granules) noexcept {
  if (bytes_.load(MemoryOrder::relaxed) == 0) return nullptr;
  // Best fit among mappings of `granules` to twice that; retry if another
  // thread takes the chosen one first.
  for (int attempt = 0; attempt < kTakeAttempts; ++attempt) {
    Atomic<uintptr_t>* best = nullptr;
    uintptr_t best_v = 0;
    for (auto& slot : slots_) {
      const uintptr_t v = slot.load(MemoryOrder::relaxed);
      const size_t g = v & kGranuleBits;
      if (v == 0 || g < granules || g > kLargestFit * granules) continue;
      if (best == nullptr || g < (best_v & kGranuleBits)) {
        best = &slot;
        best_v = v;
        if (g == granules) break;
      }
    }
    if (best == nullptr) return nullptr;
    // Linearization point: the CAS emptying the slot; acquire pairs with
    // put()'s release so the header written before caching is visible.
    if (best->compare_exchange_strong(best_v, 0, MemoryOrder::acquire, MemoryOrder::relaxed)) {
      bytes_.fetch_sub((best_v & kGranuleBits) << kChunkShift, MemoryOrder::relaxed);
      return reinterpret_cast<LargeHeader*>(best_v & ~kGranuleBits);
    }
  }
  return nullptr;
}

bool LargeCache::put(LargeHeader* h, size_t limit) noexcept {
  const size_t granules = h->mapping_size >> kChunkShift;
  if (granules > kGranuleBits) return false;
  const uint64_t size = h->mapping_size;
  // Reserve the bytes first so concurrent put() calls cannot overshoot the limit.
  if (bytes_.fetch_add(size, MemoryOrder::relaxed) + size > limit) {
    bytes_.fetch_sub(size, MemoryOrder::relaxed);
    return false;
  }
  const uintptr_t v = reinterpret_cast<uintptr_t>(h) | granules;
  for (auto& slot : slots_) {
    uintptr_t expected = 0;
    // Linearization point: the CAS filling an empty slot (release).
    if (slot.load(MemoryOrder::relaxed) == 0 &&
        slot.compare_exchange_strong(expected, v, MemoryOrder::release, MemoryOrder::relaxed)) {
      return true;
    }
  }
  bytes_.fetch_sub(size, MemoryOrder::relaxed);
  return false;
}

LargeHeader* LargeCache::take_any() noexcept {
  for (auto& slot : slots_) {
    uintptr_t v = slot.load(MemoryOrder::relaxed);
    if (v != 0 && slot.compare_exchange_strong(v, 0, MemoryOrder::acquire, MemoryOrder::relaxed)) {
      bytes_.fetch_sub((v & kGranuleBits) << kChunkShift, MemoryOrder::relaxed);
      return reinterpret_cast<LargeHeader*>(v & ~kGranuleBits);
    }
  }
  return nullptr;
}

uint64_t LargeCache::cached_bytes() const noexcept { return bytes_.load(MemoryOrder::relaxed); }

uint64_t LargeCache::cached_count() const noexcept {
  uint64_t n = 0;
  for (const auto& slot : slots_) n += slot.load(MemoryOrder::relaxed) != 0;
  return n;
}

uint64_t LargeAllocator::purge_expired(uint64_t now_ns) noexcept {
  if (cache_.cached_bytes() == 0) return 0;
  // Take every cached mapping out (at most the slot count), unmap the
  // expired ones, put the others back. A concurrent alloc may miss the
  // cache meanwhile and map afresh; correct, and once per interval at most.
  LargeHeader* keep[LargeCache::kSlots];
  unsigned kept = 0;
  uint64_t unmapped = 0;
  for (unsigned n = 0; n < LargeCache::kSlots; ++n) {
    LargeHeader* h = cache_.take_any();  // acquire: cached_at, written before put, is visible
    if (h == nullptr) break;
    if (decay_.expired(h->cached_at, now_ns)) {
      unmapped += h->mapping_size;
      unmap(h);
    } else {
      keep[kept++] = h;
    }
  }
  for (unsigned k = 0; k < kept; ++k) {
    if (!cache_.put(keep[k], policy_.cache_limit)) unmap(keep[k]);
  }
  return unmapped;
}

void* LargeAllocator::alloc(size_t size, size_t align, bool zero) noexcept {
  HAKMEM_ASSERT(registry_ != nullptr, "the large allocator is configured before use");
  if (decay_.enabled()) maybe_purge(os::coarse_now_ns());
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
  LargeHeader* h = nullptr;
  bool fresh = false;
  if (align <= kChunkSize) h = cache_.take(mapping_size >> kChunkShift);
  if (h == nullptr) {
    h = map(mapping_size, offset, align);
    if (h == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    fresh = true;
    h->mapping_size = mapping_size;
  }
  h->user_offset = offset;
  h->requested = size;
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
  live_count_.fetch_sub(1, MemoryOrder::relaxed);
  h->magic = kLargeFreedMagic;
  uint64_t now = 0;
  if (decay_.enabled()) {
    now = os::coarse_now_ns();
    h->cached_at = now;  // published to a later taker by put()'s release CAS
  }
  // Cached mappings stay resident (reusing them costs no page faults); the
  // cache's size bounds what that keeps. Under HAKMEM_MEM_DIET=2 their pages
  // beyond the first granule go back to the OS at once.
  if (h->mapping_size > kChunkSize && policy_.decommit_cached) {
    os::decommit(reinterpret_cast<char*>(h) + kChunkSize, h->mapping_size - kChunkSize);
    purged_bytes_.fetch_add(h->mapping_size - kChunkSize, MemoryOrder::relaxed);
  }
  // The newest mapping is the likeliest to be asked for again: make room for
  // it by unmapping older ones (kEvictionsPerFree at most).
  const size_t limit = policy_.cache_limit;
  if (h->user_offset < kChunkSize && h->mapping_size <= limit) {
    for (int attempt = 0; attempt < kEvictionsPerFree; ++attempt) {
      if (cache_.put(h, limit)) {
        if (now != 0) maybe_purge(now);
        return;
      }
      LargeHeader* old = cache_.take_any();
      if (old == nullptr) break;
      unmap(old);
    }
  }
  unmap(h);
}

void* LargeAllocator::try_resize_in_place(LargeHeader* h, size_t new_size) noexcept {
  if (new_size > h->usable_size()) return nullptr;
  h->requested = new_size;
  return reinterpret_cast<char*>(h) + h->user_offset;
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
  void* moved = mremap(h, old_size, mapping_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    os::unmap(target, mapping_size);
    return nullptr;
  }
  registry_->set(h, old_size >> kChunkShift, kGranuleForeign);
  auto* nh = static_cast<LargeHeader*>(moved);
  nh->mapping_size = mapping_size;
  nh->requested = new_size;
  nh->magic = kLargeMagic ^ reinterpret_cast<uintptr_t>(nh);
  register_mapping(nh);
  mapped_bytes_.fetch_add(mapping_size - old_size, MemoryOrder::relaxed);
  live_bytes_.fetch_add(mapping_size - old_size, MemoryOrder::relaxed);
  return reinterpret_cast<char*>(nh) + offset;
}

uint64_t LargeAllocator::live_bytes() const noexcept { return live_bytes_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::live_count() const noexcept { return live_count_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::mapped_bytes() const noexcept { return mapped_bytes_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::purged_bytes() const noexcept { return purged_bytes_.load(MemoryOrder::relaxed); }
uint64_t LargeAllocator::unmapped_bytes() const noexcept {
  return unmapped_bytes_.load(MemoryOrder::relaxed);
}

}  // namespace hakmem
