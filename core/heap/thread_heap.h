// ThreadHeap: one thread's slabs, per size class.
//
// For each class a heap has a `current` slab it allocates from (HotClass),
// a `partial` list of other owned slabs with free blocks and a `full` list of
// owned slabs that had none left (a full slab goes back to the partial list
// once a quarter of its blocks are free again, see Slab::unfull_at). All of it is touched by the owning thread only, so the
// owner's malloc and free use no atomic read-modify-write.
//
// Heaps live in HeapPool pages (mmap'd, never unmapped) and are reused after
// their thread exits, so a pointer to a heap stays dereferenceable forever;
// remote freers rely on that when they queue a slab on `remote_notices`.
#pragma once

#include <cstdint>

#include "core/heap/idle_reclaim_protocol.h"
#include "core/heap/remote_free_protocol.h"
#include "core/meta/chunk.h"
#include "core/meta/size_classes.h"
#include "lockfree/default_atomics.h"
#include "lockfree/notify_queue.h"
#include "platform/assert.h"
#include "platform/machine.h"

namespace hakmem {

// The owned slabs of one class other than the current one.
struct ClassSlabs {
  Slab* partial;  // head of a doubly linked list through Slab::prev/next
  Slab* full;
  uint32_t refills;
  bool used;  // this heap ever allocated from the class
};

// What the owner's malloc touches for one class. malloc pops from `free`, a
// list of the current slab's blocks kept in the heap, so it touches only the
// heap and the block (the slab descriptors of a thread's classes sit in
// different chunks, on different pages). free pushes onto the block's own
// slab, current or not (no branch on which); when `free` runs dry, malloc
// takes the current slab's list over (see take_free_blocks).
struct HotClass {
  using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;
  FreeBlock* free;  // blocks of `current` ready to hand out
  Slab* current;    // never null: the shared empty slab when there is none
  // Blocks popped from `free` since `current` became current: the slab's
  // true used count is current->used + taken (mod 2^32; current->used alone
  // may wrap below zero). Relaxed load+store by the owner; statistics read it.
  Counter taken;
};

struct ThreadHeap {
  using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;

  HotClass hot[kNumClasses];
  ClassSlabs slabs[kNumClasses];

  // Slabs of this heap that received remote frees: a remote freer whose push
  // found a slab's remote list empty queues the slab here, and the owner
  // drains those slabs when it refills. Other threads write it: it has a
  // cache line of its own, apart from the owner's fields around it.
  alignas(kCacheLine) lockfree::NotifyQueue<Slab> remote_notices;

  // Blocks this thread freed into other threads' slabs and has not yet
  // pushed onto their remote lists, one slot per class (see
  // core/heap/remote_free_protocol.h for when they are flushed and why
  // they are safe). Touched by this heap's thread only.
  alignas(kCacheLine) BasicRemoteBatch<Slab, kNumClasses> remote_batch;

  // The owner's slow paths (refills, local-free slow path), counted by the
  // owner with a relaxed load+store; a reclaimer (slab_source.cc,
  // reclaim_idle) treats the heap as idle when the count has not moved for
  // a whole reclaim interval, and records what it saw in `idle_mark` (the
  // count << 16 | the pass). Both are only a hint of idleness: reclaiming is
  // safe whatever they say (idle_reclaim_protocol.h).
  Counter slow_calls;
  Counter idle_mark;

  // Statistics, written by the owner with relaxed load+store (no RMW) and
  // read by hak_get_stats from any thread.
  Counter remote_frees[kNumClasses];

  // Position in the pool (see heap_pool.h).
  uint32_t pool_page_slot;
  void* pool_page;
};

// The shared stand-in for "no current slab": its free list is always empty,
// so the fast path needs no null check. Never written (defined in
// heap_pool.cc, which makes it every new heap's current slab).
extern Slab g_empty_slab;
inline Slab* empty_slab() { return &g_empty_slab; }

inline void bump(HotClass::Counter& c, uint64_t by = 1) {
  c.store(c.load(lockfree::MemoryOrder::relaxed) + by, lockfree::MemoryOrder::relaxed);
}

}  // namespace hakmem

namespace hakmem {

// Owner-only doubly linked lists of slabs (ClassSlabs::partial / full).
inline Slab*& slab_list_head(ClassSlabs& cc, uint8_t which) {
  return which == kOnPartialList ? cc.partial : cc.full;
}

inline void slab_list_push(ClassSlabs& cc, Slab* s, SlabList which) {
  HAKMEM_ASSERT(s->list.load() == kOnNoList, "a slab is on at most one heap list");
  Slab*& head = slab_list_head(cc, which);
  s->prev.store(nullptr);
  s->next.store(head);
  if (head != nullptr) head->prev.store(s);
  head = s;
  s->list.store(which);
  HAKMEM_ASSERT(which != kOnFullList || s->used_count() > s->unfull_at,
                "a slab goes onto the full list with more than unfull_at blocks in use");
  s->slow_at.store(which == kOnFullList ? s->unfull_at : 0);
}

inline void slab_list_remove(ClassSlabs& cc, Slab* s) {
  const uint8_t which = s->list.load();
  if (which == kOnNoList) return;
  Slab* prev = s->prev.load();
  Slab* next = s->next.load();
  if (prev != nullptr) {
    prev->next.store(next);
  } else {
    slab_list_head(cc, which) = next;
  }
  if (next != nullptr) next->prev.store(prev);
  s->prev.store(nullptr);
  s->next.store(nullptr);
  s->list.store(kOnNoList);
  s->slow_at.store(0);
}

inline Slab* slab_list_pop(ClassSlabs& cc, SlabList which) {
  Slab* s = slab_list_head(cc, which);
  if (s != nullptr) slab_list_remove(cc, s);
  return s;
}

using IdleReclaim = BasicIdleReclaim<Slab>;

// A slab the owner holds (not listed) goes onto one of its lists and becomes
// claimable by reclaimers (IdleReclaim::publish_listed). Moves between the
// owner's lists use slab_list_remove/push alone: the word stays as it is.
inline void slab_list_add(ClassSlabs& cc, Slab* s, SlabList which) {
  HAKMEM_ASSERT(s->reclaim.load(lockfree::MemoryOrder::relaxed) == kReclaimHeld,
                "a slab goes onto its owner's list from the owner's hands");
  slab_list_push(cc, s, which);
  IdleReclaim::publish_listed(s);
}

}  // namespace hakmem
