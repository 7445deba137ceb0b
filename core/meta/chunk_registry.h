// ChunkRegistry: what hakmem placed at each 2 MiB granule of the address
// space, answered in O(1) for any pointer.
//
// One byte per granule below 2^47: a 64 MiB array inside the registry
// object. The registry lives in zero-initialised static storage (.bss), so
// the array costs address space only: just the pages covering granules
// hakmem used (plus the shared zero page for lookups of foreign pointers)
// are ever resident, and a lookup is one load at a fixed offset from the
// registry, with no table pointer to load or test.
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

  // Asks the kernel not to back the table with huge pages (where THP is
  // "always", one marked granule would otherwise make 2 MiB of the table
  // resident). Idempotent; the table works without it.
  void init() noexcept { os::advise_no_huge_pages(storage_, sizeof storage_); }

  GranuleKind kind_of(const void* p) const noexcept {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if ((a >> kAddressBits) != 0) return kGranuleForeign;
    return GranuleKind(table()[a >> kChunkShift].load(lockfree::MemoryOrder::acquire));
  }

  // Marks [p, p + n * kChunkSize) (release).
  void set(const void* p, size_t granules, GranuleKind kind) noexcept;
  void set_one(const void* p, GranuleKind kind) noexcept { set(p, 1, kind); }

  // Calls f(granule_address, kind) for every granule marked as hakmem's, in
  // address order. Only the table's resident pages can hold marks, so it
  // reads those alone (mincore), not the whole 64 MiB. A racy snapshot.
  template <class F>
  void for_each_marked(F&& f) const noexcept {
    // Relaxed: this walk for statistics acts on nothing it reads but
    // residency; an entry read with relaxed order may be stale, as any
    // snapshot may.
    const Entry* t = table();
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
    return os::resident_bytes_in(storage_, sizeof storage_);
  }

 private:
  using Entry = lockfree::DefaultAtomics::Atomic<uint8_t>;
  static_assert(sizeof(Entry) == 1 && alignof(Entry) == 1,
                "an entry is one byte, whose zero is kGranuleForeign");
  // The entries, as bytes: zero bytes are valid atomics holding
  // kGranuleForeign (as in a fresh anonymous mapping), and raw bytes keep
  // the registry trivially constant-initialised (a constinit array of 2^26
  // atomics would be built at compile time, one constructor at a time).
  Entry* table() noexcept { return reinterpret_cast<Entry*>(storage_); }
  const Entry* table() const noexcept { return reinterpret_cast<const Entry*>(storage_); }
  alignas(kPageSize) unsigned char storage_[kEntries] = {};
};

}  // namespace hakmem
