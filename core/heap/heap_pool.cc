#include "core/heap/heap_pool.h"

#include <new>

#include "platform/os.h"

namespace hakmem {

constinit Slab g_empty_slab;

namespace {

constexpr size_t kHeapPageBytes = align_up(sizeof(HeapPage), kPageSize);

void init_heap(ThreadHeap* h, HeapPage* page, unsigned slot) {
  for (HotClass& hc : h->hot) {
    hc.free = nullptr;
    hc.current = empty_slab();
    hc.taken.store(0, lockfree::MemoryOrder::relaxed);
  }
  for (ClassSlabs& c : h->slabs) c = ClassSlabs{nullptr, nullptr, 0, false};
  for (auto& c : h->remote_frees) c.store(0, lockfree::MemoryOrder::relaxed);
  h->remote_batch.reset(true);
  h->pool_page = page;
  h->pool_page_slot = slot;
}

}  // namespace

ThreadHeap* HeapPool::acquire() noexcept {
  for (HeapPage* p = pages_.first(); p != nullptr; p = pages_.next(p)) {
    const int slot = p->free_slots.claim_any();
    if (slot >= 0) {
      ThreadHeap* h = &p->heaps[slot];
      init_heap(h, p, unsigned(slot));
      return h;
    }
  }
  // Every page is full: map one more, keep slot 0 for ourselves, publish it.
  void* mem = os::map_aligned(kHeapPageBytes, kPageSize);
  if (mem == nullptr) return nullptr;
  auto* page = new (mem) HeapPage();
  page->free_slots.initialize(~uint64_t{1});
  init_heap(&page->heaps[0], page, 0);
  pages_.append(page);
  return &page->heaps[0];
}

size_t HeapPool::resident_bytes() const noexcept {
  size_t bytes = 0;
  for (HeapPage* p = pages_.first(); p != nullptr; p = pages_.next(p)) {
    bytes += os::resident_bytes_in(p, kHeapPageBytes);
  }
  return bytes;
}

void HeapPool::release(ThreadHeap* heap) noexcept {
  static_cast<HeapPage*>(heap->pool_page)->free_slots.release(heap->pool_page_slot);
}

}  // namespace hakmem
