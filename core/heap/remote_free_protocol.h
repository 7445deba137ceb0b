// The protocol of frees by a thread that does not own the block's slab, as
// templates over the slab type (BasicSlab<P, Heap>, core/meta/slab.h) and so
// over the atomics policy P. The allocator instantiates them with
// DefaultAtomics (core/heap/remote_free.cc, refill.cc, slab_source.cc,
// process.cc); the Relacy models in model_checks/ instantiate the same code
// with RelacyAtomics and call it. Nothing here reaches the OS: this header
// includes only //lockfree and the slab template.
//
// The pieces:
//  - BasicRemoteBatch: a freeing heap's cache of pending remote frees, one
//    slot per size class, each holding a chain of blocks of one slab.
//  - BasicRemoteFree::free_block: what a non-owner free does (state check,
//    adoption attempt, batch or direct push).
//  - BasicRemoteFree::post / notify_owner: one push of a chain onto the
//    slab's remote list and, when the list was empty, the notice to the
//    owner with the confirming RMW on `owner`.
//  - drain_notices: the owner's side of the notices.
//  - adopt_slab / abandon_slab: the adoption and abandonment handshakes on
//    an adoptable bitmap.
//
// Why pending blocks are safe. A block in a batch is still counted in its
// slab's `used` (only the owner lowers `used`, when a block reaches its own
// list), so no owner, adopter or collector sees `used == 0` while a batch
// holds a block of the slab: the slab is never released, decommitted or
// handed to a new owner as fresh under a pending batch. It may change hands
// by abandonment and adoption; the batch does not care who owns the slab,
// it pushes onto the remote list, which every owner (and every adopter)
// drains. The block's free tag is written when it enters the batch, so a
// second free of it is refused as a double free at once.
//
// Bounded delay. A batch is flushed when a free of its class goes to
// another slab, when it reaches kMaxBatch blocks, when its heap refills any
// class, before its heap adopts a slab, at its thread's exit (before the
// heap's slabs are abandoned) and by the statistics and check entry points
// for the calling thread. Until then up to kMaxBatch blocks per class wait:
// a thread that frees remotely and then neither allocates nor frees nor
// exits keeps them (at most one slab per class) from their owner.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/meta/slab.h"
#include "lockfree/memory_order.h"
#include "lockfree/notify_queue.h"

namespace hakmem {

// Memory orders and steps of the remote-free protocol; a parameter only so
// the models can show a weakened protocol is caught.
struct RemoteFreeOrders {
  // The confirming RMW of a freer that read no owner (notify_owner).
  // Release on success: if it precedes an adopter's exchange on `owner` in
  // take_ownership (an acquire RMW that then reads it), the freer's push
  // happens before the adopter's drain, which therefore takes the block.
  // Nothing is acquired by a success (it reads the null an exiting owner
  // stored relaxed). Relaxed on failure: it then reads an owner exactly as
  // the relaxed load before it may, and uses it the same way (a push onto
  // that heap's lock-free notice queue; heaps are never unmapped).
  static constexpr lockfree::MemoryOrder confirm = lockfree::MemoryOrder::release;
  static constexpr lockfree::MemoryOrder confirm_failure = lockfree::MemoryOrder::relaxed;
  // The confirming RMW exists (false only in a negative control).
  static constexpr bool confirm_null_owner = true;
  // A flush whose push found the remote list empty notifies the owner
  // (false only in a negative control).
  static constexpr bool notify_on_flush = true;
};

// Pending remote frees of one heap: per slot a chain head..tail of blocks of
// one slab, newest first, linked through the blocks' `next`; `count` blocks.
// Touched only by its heap's thread: plain fields.
template <class Slab, unsigned kSlots>
struct BasicRemoteBatch {
  using Block = typename Slab::Block;
  // Blocks per slot before it is flushed: one CAS and at most one notice per
  // this many remote frees of a slab.
  static constexpr uint32_t kMaxBatch = 32;
  static_assert(kSlots <= 64, "pending is a 64-bit mask of slots");

  struct Slot {
    Slab* slab;
    Block* head;
    Block* tail;
    uint32_t count;
  };

  Slot slots[kSlots];
  uint64_t pending;  // bit i set: slots[i] holds blocks
  bool enabled;      // false: frees go straight to the remote lists

  void reset(bool enable) {
    for (Slot& s : slots) s = Slot{nullptr, nullptr, nullptr, 0};
    pending = 0;
    enabled = enable;
  }
  // One slot per size class: consecutive remote frees of one class usually
  // go to the slab their allocating thread was carving. Every class must be
  // below kSlots (the allocator has kSlots == kNumClasses).
  static unsigned slot_of(const Slab* s) { return s->size_class; }
};

// What BasicRemoteFree::free_block did with the block.
enum class RemoteFreeOutcome : uint8_t {
  kFreeOfUnusedSlab,  // the slab is free: a double free, reported by the caller
  kAdopted,           // the caller's heap adopted the slab: the caller frees locally
  kBatched,           // the block waits in the caller's batch
  kPosted,            // the block is on the slab's remote list
};

// Heap needs `remote_notices` (a lockfree::NotifyQueue<Slab, P>) and, for
// batching, `remote_batch` (a BasicRemoteBatch<Slab, N>).
template <class Slab, class Heap, class Orders = RemoteFreeOrders>
struct BasicRemoteFree {
  using Block = typename Slab::Block;
  using Queue = std::remove_reference_t<decltype(std::declval<Heap&>().remote_notices)>;
  using MO = lockfree::MemoryOrder;

  // Tells the owner of `s`, whose remote list this thread's push found
  // empty, that the slab has blocks for it: at most one notice at a time per
  // slab (Queue::try_claim, an acq_rel exchange on the slab's flag,
  // linearization point of the notice when it wins).
  //
  // The owner is read relaxed: a stale non-null owner is safe (heaps are
  // never unmapped and an owner ignores notices for slabs it no longer
  // owns; the real owner finds the blocks when it uses the slab or in its
  // backstop scan, refill.cc next_slab). A null owner is confirmed by an RMW
  // on `owner` (a CAS null -> null): it is ordered against an adopter's
  // exchange in take_ownership, so either the CAS reads the adopter's heap
  // and the notice goes there, or the CAS comes first and this thread's
  // push happens before the adopter's drain, which takes the block. With no
  // owner at all (the slab is abandoned) the flag is given back: the next
  // adopter drains the list.
  static void notify_owner(Slab* s) {
    if (!Queue::try_claim(s)) return;
    Heap* owner = s->owner.load(MO::relaxed);
    if constexpr (Orders::confirm_null_owner) {
      if (owner == nullptr) {
        s->owner.compare_exchange_strong(owner, nullptr, Orders::confirm, Orders::confirm_failure);
      }
    }
    if (owner != nullptr) {
      owner->remote_notices.push_claimed(s);
    } else {
      Queue::unclaim(s);
    }
  }

  // Pushes the chain first..last (linked through `next`, tags written) onto
  // the slab's remote list with one CAS (RemoteFreeList::push_chain: release
  // on success, its linearization point) and notifies the owner if the list
  // was empty.
  static void post(Slab* s, Block* first, Block* last) {
    if (s->remote.push_chain(first, last)) notify_owner(s);
  }

  // Posts the pending blocks of one slot and empties it. Out of line, so
  // that add's common case (link the block, count it) needs no registers
  // saved.
  template <class Batch>
  [[gnu::noinline]] static void flush_slot(Batch& batch, unsigned i) {
    auto& slot = batch.slots[i];
    if (slot.count != 0) {
      if (slot.slab->remote.push_chain(slot.head, slot.tail)) {
        if constexpr (Orders::notify_on_flush) notify_owner(slot.slab);
      }
    }
    slot = typename Batch::Slot{nullptr, nullptr, nullptr, 0};
    batch.pending &= ~(uint64_t{1} << i);
  }

  // Posts every pending block of the batch.
  template <class Batch>
  static void flush(Batch& batch) {
    for (uint64_t bits = batch.pending; bits != 0; bits &= bits - 1) {
      flush_slot(batch, unsigned(__builtin_ctzll(bits)));
    }
  }

  // Posts the pending blocks of slab `s`, if the batch has any.
  template <class Batch>
  static void flush_slab(Batch& batch, const Slab* s) {
    const unsigned i = Batch::slot_of(s);
    if (batch.slots[i].slab == s) flush_slot(batch, i);
  }

  // Adds block b (tag written) to the batch; flushes the slot first if it
  // holds another slab's blocks, and after if it is full.
  template <class Batch>
  static void add(Batch& batch, Slab* s, Block* b) {
    const unsigned i = Batch::slot_of(s);
    auto& slot = batch.slots[i];
    if (slot.slab != s) {
      if (slot.slab != nullptr) flush_slot(batch, i);
      slot.slab = s;
      slot.tail = b;  // its link is written by push_chain
      slot.head = b;
      slot.count = 1;
      batch.pending |= uint64_t{1} << i;
    } else {
      b->next.store(slot.head);
      slot.head = b;
      ++slot.count;
    }
    if (slot.count >= Batch::kMaxBatch) flush_slot(batch, i);
  }

  // The common case of free_block, kept small so that a caller can try it
  // before anything that needs a stack frame: the heap's slot for the
  // block's class already holds blocks of this slab, has room, and the slab
  // is owned (not abandoned: then free_block tries adoption). The slab
  // cannot be free: a block of it is pending in the slot. Adds the block
  // (tag written) and returns true, or returns false having written
  // nothing.
  static bool add_to_open_slot(Heap* heap, Slab* s, Block* b, uintptr_t tag) {
    auto& batch = heap->remote_batch;
    using Batch = std::remove_reference_t<decltype(batch)>;
    auto& slot = batch.slots[Batch::slot_of(s)];
    if (slot.slab != s || slot.count + 1 >= Batch::kMaxBatch) return false;
    if (s->state.load(MO::relaxed) != kSlabOwned) return false;
    b->free_tag.store(tag);
    b->next.store(slot.head);
    slot.head = b;
    ++slot.count;
    return true;
  }

  // A free of block b of slab s (a block start, not already free by its
  // tag) by a thread whose heap (`heap`, null if the thread has none) does
  // not own s. `adopt(s)` tries to adopt the abandoned slab for `heap` and
  // returns whether it did (SlabSource::try_adopt in the allocator).
  //
  // The slab's state is read relaxed: kSlabFree means no block of the slab
  // is live, so this free is a double free (reported; no block of a free
  // slab can be pending in a batch, since pending blocks are live for their
  // slab). A stale kSlabOwned for an abandoned slab only skips the adoption
  // attempt; the push is correct in every state but free.
  template <class Adopt>
  static RemoteFreeOutcome free_block(Heap* heap, Slab* s, Block* b, uintptr_t tag, Adopt&& adopt) {
    if (heap != nullptr && add_to_open_slot(heap, s, b, tag)) return RemoteFreeOutcome::kBatched;
    const uint8_t state = s->state.load(MO::relaxed);
    if (state == kSlabFree) return RemoteFreeOutcome::kFreeOfUnusedSlab;
    b->free_tag.store(tag);
    if (heap != nullptr && state == kSlabOwned && heap->remote_batch.enabled) {
      add(heap->remote_batch, s, b);  // the common case
      return RemoteFreeOutcome::kBatched;
    }
    if (heap == nullptr) {
      post(s, b, b);
      return RemoteFreeOutcome::kPosted;
    }
    if (state == kSlabAbandoned) {
      // Our pending blocks of s go to its remote list first, so that the
      // adopter's drain (ours or another's) takes them.
      flush_slab(heap->remote_batch, s);
      if (adopt(s)) return RemoteFreeOutcome::kAdopted;
    }
    if (!heap->remote_batch.enabled) {
      post(s, b, b);
      return RemoteFreeOutcome::kPosted;
    }
    add(heap->remote_batch, s, b);
    return RemoteFreeOutcome::kBatched;
  }
};

// The owner's side of the notices: visits every slab queued on `heap`'s
// notices that `heap` still owns (a slab may have changed hands since it
// was queued; the owner field is the owner's own latest write, so a relaxed
// load is exact for "do I own it"). Linearization point: the queue's
// take_all (acquire); each slab's flag is cleared (acq_rel exchange) before
// its visit, see lockfree/notify_queue.h.
template <class Heap, class Visit>
void drain_notices(Heap* heap, Visit&& visit) {
  heap->remote_notices.drain([heap, &visit](auto* s) {
    if (s->owner.load(lockfree::MemoryOrder::relaxed) != heap) return;
    visit(s);
  });
}

// Adoption of slab s, bit i of its chunk's adoptable bitmap, by `heap`: the
// claim (an acquire RMW on the bitmap, linearization point; it acquires the
// abandoning owner's release of the bit and with it every owner-private
// field) then take_ownership (an acq_rel exchange on `owner`, ordered
// against remote freers' confirming RMWs) and the drain of the remote list.
// Returns false if another thread claimed the bit first.
template <class Bitmap, class Slab, class Heap>
bool adopt_slab(Bitmap& adoptable, unsigned i, Slab* s, Heap* heap) {
  if (!adoptable.claim(i)) return false;
  s->take_ownership(heap);
  s->drain_remote();
  return true;
}

// Abandonment of slab s (bit i) by its exiting owner, which has drained it
// and found live blocks: owner and state cleared (relaxed), then the
// release RMW on the adoptable bitmap (linearization point) publishes every
// owner-private field to the next adopter. Returns false if the bit was
// already set (a bug).
template <class Bitmap, class Slab>
bool abandon_slab(Bitmap& adoptable, unsigned i, Slab* s) {
  s->give_up_ownership(kSlabAbandoned);
  return adoptable.release(i);
}

}  // namespace hakmem
