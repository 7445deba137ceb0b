// HeapPool: storage for ThreadHeaps without malloc.
//
// Pages of heaps are appended to a lock-free ChunkList and never unmapped;
// a SlabBitmap<uint64_t> per page says which heap slots are free. Taking a
// heap claims a bit; a dying thread releases its bit. Lock-free throughout.
#pragma once

#include <cstdint>

#include "core/heap/thread_heap.h"
#include "lockfree/chunk_list.h"
#include "lockfree/default_atomics.h"
#include "lockfree/slab_bitmap.h"

namespace hakmem {

struct HeapPage : lockfree::ChunkListHook<HeapPage, lockfree::DefaultAtomics> {
  static constexpr unsigned kSlots = 64;
  lockfree::SlabBitmap<lockfree::DefaultAtomics, uint64_t> free_slots{~uint64_t{0}};
  ThreadHeap heaps[kSlots];
};

class HeapPool {
 public:
  // An initialised heap, or null if memory is exhausted.
  ThreadHeap* acquire() noexcept;
  void release(ThreadHeap* heap) noexcept;

  // Calls f(heap) for every heap slot currently taken (a racy snapshot for
  // statistics: slots may be taken or released meanwhile).
  template <class F>
  void for_each_live(F&& f) const {
    for (HeapPage* p = pages_.first(); p != nullptr; p = pages_.next(p)) {
      const uint64_t free = p->free_slots.snapshot();
      for (unsigned i = 0; i < HeapPage::kSlots; ++i) {
        if (((free >> i) & 1) == 0) f(&p->heaps[i]);
      }
    }
  }

  // Whether `h` is a heap of one of the pool's pages, found through the
  // page list's acquire loads: a thread that got `h` from a relaxed load (a
  // slab's owner) and reads its fields after this returns true reads them
  // after the page was initialised (its append's release CAS).
  bool holds(const ThreadHeap* h) const noexcept {
    for (HeapPage* p = pages_.first(); p != nullptr; p = pages_.next(p)) {
      if (h >= p->heaps && h < p->heaps + HeapPage::kSlots) return true;
    }
    return false;
  }

  // Resident bytes of the pool's pages.
  size_t resident_bytes() const noexcept;

 private:
  lockfree::ChunkList<HeapPage> pages_;
};

}  // namespace hakmem
