// ChunkRegistry: what hakmem placed at each 2 MiB granule of the address
// space, answered in O(1) for any pointer.
//
// One byte per granule below 2^47: a 64 MiB array reserved with
// MAP_NORESERVE, so only the pages covering granules hakmem used (plus the
// shared zero page for lookups of foreign pointers) are ever resident.
// An entry is written with a release store after the memory it describes
// is fully initialised, and read with an acquire load, so a pointer the
// registry calls hakmem's always leads to an initialised header.
#pragma once

#include <cstdint>

#include "core/meta/geometry.h"
#include "platform/os.h"
#include "lockfree/default_atomics.h"

namespace hakmem {

enum GranuleKind : uint8_t {
  kGranuleForeign = 0,      // not hakmem's
  kGranuleChunk = 1,        // a small-object chunk; header near its start (chunk_of)
  kGranuleLarge = 2,        // first granule of a large mapping; header at its start
  kGranuleLargeBelow = 3,   // an over-aligned large block; header one granule below
  kGranuleLargeInterior = 4 // inside a large mapping; no block starts here
};

class ChunkRegistry {
 public:
  static constexpr uint64_t kEntries = uint64_t{1} << (kAddressBits - kChunkShift);
  static_assert(kEntries % (512 * kPageSize) == 0, "for_each_marked reads whole batches");

  // Maps the table. Lock-free and idempotent: racing callers each map one,
  // one publishes with a CAS, the others unmap theirs.
  bool init() noexcept;

  GranuleKind kind_of(const void* p) const noexcept {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if ((a >> kAddressBits) != 0) return kGranuleForeign;
    const Entry* t = table_.load(lockfree::MemoryOrder::acquire);
    if (t == nullptr) return kGranuleForeign;
    return GranuleKind(t[a >> kChunkShift].load(lockfree::MemoryOrder::acquire));
  }

  // Marks [p, p + n * kChunkSize) (release).
  void set(const void* p, size_t granules, GranuleKind kind) noexcept;
  void set_one(const void* p, GranuleKind kind) noexcept { set(p, 1, kind); }

  // Calls f(granule_address, kind) for every granule marked as hakmem's, in
  // address order. Only the table's resident pages can hold marks, so it
  // reads those alone (mincore), not the whole 64 MiB. A racy snapshot.
  template <class F>
  void for_each_marked(F&& f) const noexcept {
    // Relaxed (here and in table_resident_bytes): these walks for
    // statistics only read entries, which are atomics in a mapping the
    // kernel zero-fills, and act on nothing they read but residency; an
    // entry read with relaxed order may be stale, as any snapshot may.
    const Entry* t = table_.load(lockfree::MemoryOrder::relaxed);
    if (t == nullptr) return;
    constexpr uint64_t kPerPage = kPageSize / sizeof(Entry);
    constexpr uint64_t kBatch = 512;  // table pages per mincore call
    unsigned char resident[kBatch];
    for (uint64_t batch = 0; batch < kEntries; batch += kBatch * kPerPage) {
      os::resident_pages(t + batch, kBatch, resident);
      for (uint64_t page = 0; page < kBatch; ++page) {
        if ((resident[page] & 1) == 0) continue;
        const uint64_t first = batch + page * kPerPage;
        for (uint64_t i = first; i < first + kPerPage; ++i) {
          const uint8_t kind = t[i].load(lockfree::MemoryOrder::relaxed);
          if (kind != kGranuleForeign) f(uintptr_t(i) << kChunkShift, GranuleKind(kind));
        }
      }
    }
  }

  // Resident bytes of the table itself.
  size_t table_resident_bytes() const noexcept {
    const Entry* t = table_.load(lockfree::MemoryOrder::relaxed);
    return t == nullptr ? 0 : os::resident_bytes_in(t, kEntries * sizeof(Entry));
  }

 private:
  using Entry = lockfree::DefaultAtomics::Atomic<uint8_t>;
  lockfree::DefaultAtomics::Atomic<Entry*> table_{nullptr};
};

}  // namespace hakmem
