// RangeCache: a bounded lock-free set of free address ranges, each a whole
// number of units (1 << UnitShift bytes) starting at a unit boundary. The
// large-block allocator (core/large/large.cc) keeps its freed mappings here,
// resident, and splits and coalesces them.
//
// The set is a fixed array of slots. A slot holds 0 (empty) or a range's
// base address with its unit count in the low UnitShift bits, so a slot
// value names one range completely and there is no ABA: a CAS that finds the
// value it expects takes exactly that range, which is in the cache at that
// instant.
//
// Every operation that removes a range (take, take_at, take_adjacent,
// take_any) ends in a CAS from the range's value to 0; whoever wins it owns
// the range and its memory (including the header the allocator keeps at its
// base) until it puts a range back with a CAS from 0. So two neighbours
// taken out to coalesce are owned one by one; a neighbour another thread
// takes first is simply not merged. Nothing is read from a range's memory
// before its CAS succeeds, so a range unmapped by its owner is never
// touched.
//
// Orders: put publishes with release (the owner's writes to the range: its
// header, its user data) and every take acquires them (Orders below). The
// byte counter is a budget, reserved before a put (relaxed: it orders
// nothing, it only bounds how much is cached).
#pragma once

#include <cstddef>
#include <cstdint>
#include <source_location>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

struct RangeCacheOrders {
  // A successful take: acquire, pairing with put's release, so the taker sees
  // everything the previous owner wrote to the range before caching it.
  static constexpr MemoryOrder take = MemoryOrder::acquire;
  // The CAS filling an empty slot: release, publishing the owner's writes.
  static constexpr MemoryOrder put = MemoryOrder::release;
};

struct CachedRange {
  uintptr_t base = 0;  // 0: none
  size_t units = 0;
  bool empty() const { return base == 0; }
};

template <class P = DefaultAtomics, class Orders = RangeCacheOrders, unsigned UnitShift = 21,
          unsigned Slots = 64>
class BasicRangeCache {
 public:
  using Loc = std::source_location;
  static constexpr unsigned kSlots = Slots;
  static constexpr uintptr_t kUnitMask = (uintptr_t{1} << UnitShift) - 1;
  static constexpr size_t kMaxUnits = kUnitMask;  // a count must fit the low bits
  // A take retries this often when other threads take its best fit first.
  static constexpr int kTakeAttempts = 4;

  constexpr BasicRangeCache() = default;
  BasicRangeCache(const BasicRangeCache&) = delete;
  BasicRangeCache& operator=(const BasicRangeCache&) = delete;

  static uintptr_t end_of(const CachedRange& r) { return r.base + (uintptr_t(r.units) << UnitShift); }

  // The smallest cached range of at least `units` (best fit), or none; with
  // `or_largest`, failing that, the largest cached range.
  CachedRange take(size_t units, bool or_largest = false, Loc loc = Loc::current()) noexcept {
    if (!or_largest && units_.load(MemoryOrder::relaxed, loc) < units) return {};
    for (int attempt = 0; attempt < kTakeAttempts; ++attempt) {
      Slot* best = nullptr;
      uintptr_t best_v = 0;
      Slot* largest = nullptr;
      uintptr_t largest_v = 0;
      for (auto& slot : slots_) {
        const uintptr_t v = slot.load(MemoryOrder::relaxed, loc);
        const size_t u = v & kUnitMask;
        if (v == 0) continue;
        if (u < units) {
          if (or_largest && u > (largest_v & kUnitMask)) {
            largest = &slot;
            largest_v = v;
          }
          continue;
        }
        if (best == nullptr || u < (best_v & kUnitMask)) {
          best = &slot;
          best_v = v;
          if (u == units) break;
        }
      }
      if (best == nullptr) {
        best = largest;
        best_v = largest_v;
      }
      if (best == nullptr) return {};
      if (CachedRange r = claim(*best, best_v, loc); !r.empty()) return r;
    }
    return {};
  }

  // The cached range starting at `base` if it has at least `min_units`, or
  // none (realloc growing a block into the free range after it).
  CachedRange take_at(uintptr_t base, size_t min_units, Loc loc = Loc::current()) noexcept {
    for (auto& slot : slots_) {
      const uintptr_t v = slot.load(MemoryOrder::relaxed, loc);
      if (v == 0 || (v & ~kUnitMask) != base) continue;
      if ((v & kUnitMask) < min_units) return {};
      return claim(slot, v, loc);
    }
    return {};
  }

  // `r` (owned by the caller) merged with the cached ranges that end where it
  // starts and start where it ends, which are taken out of the cache and
  // passed to `absorbed` one by one (the merged range grows as it goes, so
  // a chain of neighbours can merge). One scan of the slots: a neighbour
  // cached during the scan may be missed (it stays cached on its own, which
  // is correct).
  template <class F>
  CachedRange take_adjacent(CachedRange r, F&& absorbed, Loc loc = Loc::current()) noexcept {
    if (units_.load(MemoryOrder::relaxed, loc) == 0) return r;
    for (auto& slot : slots_) {
      const uintptr_t v = slot.load(MemoryOrder::relaxed, loc);
      if (v == 0) continue;
      const CachedRange c{v & ~kUnitMask, v & kUnitMask};
      if (c.base != end_of(r) && end_of(c) != r.base) continue;
      if (r.units + c.units > kMaxUnits || claim(slot, v, loc).empty()) continue;
      absorbed(c);
      if (c.base < r.base) r.base = c.base;
      r.units += c.units;
    }
    return r;
  }

  // Caches `r` if the cached units stay at most `limit_units` and a slot is
  // free; false if not (the caller keeps the range).
  bool put(CachedRange r, size_t limit_units, Loc loc = Loc::current()) noexcept {
    if (r.units == 0 || r.units > kMaxUnits) return false;
    // Reserve first, so concurrent puts cannot overshoot the limit together.
    if (units_.fetch_add(r.units, MemoryOrder::relaxed, loc) + r.units > limit_units) {
      units_.fetch_sub(r.units, MemoryOrder::relaxed, loc);
      return false;
    }
    const uintptr_t v = r.base | r.units;
    for (auto& slot : slots_) {
      uintptr_t expected = 0;
      // Linearization point: the CAS filling an empty slot. Orders::put
      // (release) publishes the owner's writes to the range to its next
      // taker; failure relaxed: the slot is simply not ours.
      if (slot.load(MemoryOrder::relaxed, loc) == 0 &&
          slot.compare_exchange_strong(expected, v, Orders::put, MemoryOrder::relaxed, loc)) {
        return true;
      }
    }
    units_.fetch_sub(r.units, MemoryOrder::relaxed, loc);
    return false;
  }

  // Any cached range (to evict or to purge), or none.
  CachedRange take_any(Loc loc = Loc::current()) noexcept {
    for (auto& slot : slots_) {
      const uintptr_t v = slot.load(MemoryOrder::relaxed, loc);
      if (v == 0) continue;
      if (CachedRange r = claim(slot, v, loc); !r.empty()) return r;
    }
    return {};
  }

  size_t cached_units(Loc loc = Loc::current()) const noexcept {
    return units_.load(MemoryOrder::relaxed, loc);
  }
  // Ranges in the cache (a racy scan of the slots: for statistics).
  size_t cached_count(Loc loc = Loc::current()) const noexcept {
    size_t n = 0;
    for (const auto& slot : slots_) n += slot.load(MemoryOrder::relaxed, loc) != 0;
    return n;
  }

 private:
  using Slot = typename P::template Atomic<uintptr_t>;

  // Takes the range the slot held as `v`, or none if it holds something else
  // now. Linearization point: the CAS from v to 0. Orders::take (acquire)
  // pairs with the put that cached the range, so its owner's writes are
  // visible; failure relaxed: nothing was taken, nothing is read.
  CachedRange claim(Slot& slot, uintptr_t v, const Loc& loc) noexcept {
    uintptr_t expected = v;
    if (!slot.compare_exchange_strong(expected, 0, Orders::take, MemoryOrder::relaxed, loc)) return {};
    units_.fetch_sub(v & kUnitMask, MemoryOrder::relaxed, loc);
    return {v & ~kUnitMask, v & kUnitMask};
  }

  Slot slots_[Slots];
  typename P::template Atomic<size_t> units_{0};
};

using RangeCache = BasicRangeCache<>;

}  // namespace hakmem::lockfree
