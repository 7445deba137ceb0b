// A slab: a 64 KiB run of equal-size blocks, owned by at most one thread.
//
// Ownership comes from the chunk's bitmaps (chunk.h): a thread owns a slab
// between a successful claim of its bit and the release of that bit. Fields
// marked "owner" are touched only by the current owner; ownership changes
// hands through the bitmaps' release/acquire pairs, so those fields need no
// atomics. Fields any thread may touch are atomics.
//
// Other threads free blocks into `remote` (a RemoteFreeList); the owner moves
// them to its own free list with one exchange (drain_remote). A dying owner
// abandons a slab that still has live blocks; remote frees keep arriving on
// `remote` and the next owner (the adopter) drains them, so none is lost.
//
// The type is a template over the atomics policy so the abandonment/adoption
// protocol can be model-checked with Relacy (model_checks/).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"
#include "lockfree/remote_free_list.h"

namespace hakmem {

// A free block's first two words. `next` links it on whichever free list
// holds it, the owner's or the remote one (RemoteFreeList's default link).
// `free_tag` holds FreeTagKey::tag_for(block) while the block is free and
// anything else while it is live; a free that finds the tag already set is a
// double free.
template <class P>
struct BasicFreeBlock {
  typename P::template Var<BasicFreeBlock*> next;
  typename P::template Var<uintptr_t> free_tag;
};

// The tag of a free block: a secret, random per process, XORed with the
// block's address, so that no value a program stores in a live block is
// likely to equal it.
struct FreeTagKey {
  uintptr_t secret = 0;
  uintptr_t tag_for(const void* block) const { return secret ^ reinterpret_cast<uintptr_t>(block); }
};

enum SlabState : uint8_t {
  kSlabFree = 0,       // its bit is set in the chunk's free bitmap
  kSlabOwned = 1,      // a live thread allocates from it
  kSlabAbandoned = 2,  // its owner exited with live blocks; adoptable bit set
};

// The handshake between a slab's owner and the threads that reclaim the
// slabs of idle owners (core/heap/idle_reclaim_protocol.h): who may touch a
// listed slab's blocks.
enum SlabReclaim : uint8_t {
  kReclaimHeld = 0,      // owner's: current, on no list, or taken back from its list
  kReclaimListed = 1,    // on its owner's list, claimable by a reclaimer
  kReclaimClaimed = 2,   // a reclaimer (or a purge pass) holds it
  kReclaimDone = 3,      // reclaimed: no live block, remote list empty; the owner releases it
  kReclaimDetached = 4,  // its exiting owner gave it up while claimed: the claimer finishes it
};

// Which of its owner's lists a slab is on (see thread_heap.h).
enum SlabList : uint8_t { kOnNoList = 0, kOnPartialList = 1, kOnFullList = 2 };

// A full slab goes back to its owner's partial list once 1/kUnfullFraction
// of its blocks are free.
inline constexpr uint32_t kUnfullFraction = 4;

// The descriptor's parts that different threads write sit on separate cache
// lines (platform/machine.h's kCacheLine; slab.h includes only //lockfree so
// that the model checks can instantiate it).
inline constexpr size_t kSlabLineSize = 64;

// Memory orders of the slab descriptor; a parameter only so the model
// checks can show a weakened slab is caught.
struct DefaultSlabOrders {
  // take_ownership's exchange on `owner`. Acquire: a remote freer that read
  // no owner confirms it with a release CAS on `owner`
  // (remote_free_protocol.h, notify_owner); if that CAS comes first in
  // `owner`'s modification order, this exchange reads it, and the freer's
  // push happens before the drain that follows the exchange. Nothing needs
  // its release half: a freer that reads this owner (by its relaxed load or
  // its failed CAS) only pushes the slab onto the owner's notice queue,
  // which is lock-free and lives in a heap that is never unmapped.
  static constexpr lockfree::MemoryOrder take = lockfree::MemoryOrder::acquire;
  // The used count's store by the owner's free (push_local). Release: a
  // reclaimer that reads the count with acquire and finds every counted
  // block on the remote list purges the slab's pages
  // (core/heap/idle_reclaim_protocol.h); the owner's writes to the block it
  // just freed must happen before that purge. On x86 a release store is the
  // same plain mov as a relaxed one.
  static constexpr lockfree::MemoryOrder local_free = lockfree::MemoryOrder::release;
  // The remote list's orders (lockfree/remote_free_list.h).
  using Remote = lockfree::RemoteFreeListOrders;
};

template <class P, class Heap, class Orders = DefaultSlabOrders>
struct alignas(kSlabLineSize) BasicSlab {
  using Block = BasicFreeBlock<P>;
  template <class T>
  using Var = typename P::template Var<T>;
  template <class T>
  using Atomic = typename P::template Atomic<T>;
  using MO = lockfree::MemoryOrder;

  // --- first cache line: everything the owner's malloc and free touch ---
  // The owning heap, or null. Set by the new owner's exchange in
  // take_ownership and cleared by the owner (relaxed: free compares it only
  // against the reader's own heap, and a thread always sees its own latest
  // write, so a stale value can never make a non-owner think it owns the
  // slab); read by every free to choose the local or the remote path, and
  // confirmed by a remote freer's RMW when it reads null
  // (core/heap/remote_free_protocol.h).
  Atomic<Heap*> owner{nullptr};
  // Blocks handed out and not yet back on `free`. Only the owner changes it
  // (plain load + store, no RMW); statistics read it relaxed.
  Atomic<uint32_t> used{0};
  Atomic<uint8_t> state{kSlabFree};
  Var<uint8_t> list{kOnNoList};  // owner: which heap list holds the slab
  uint8_t size_shift = 0;        // geometry (below): block_size's trailing zero bits
  Var<Block*> free{nullptr};     // owner: blocks ready to hand out
  // Block geometry, constant once the chunk is published: `capacity`
  // blocks of block_size bytes from area_begin.
  uintptr_t area_begin = 0;
  uint64_t capacity = 0;  // 64 bits: is_block_start compares it with one cmp
  uint32_t block_size = 0;
  uint32_t size_class = 0;
  // The inverse modulo 2^64 of block_size's odd part: see is_block_start.
  uint64_t odd_inverse = 0;
  // A slab on its owner's full list goes back to the partial list only when
  // its used count falls to this (a quarter of its blocks free), so every
  // refill from a partial slab yields a batch of blocks, not one.
  uint32_t unfull_at = 0;
  // Owner: the used count at which the owner's free takes its slow path:
  // unfull_at while the slab is on the full list, 0 otherwise (set with
  // `list`). One compare then covers both "became empty" and "became
  // unfull". It relies on a full-list slab's used count changing only by
  // local frees, one at a time: every drain of a full-list slab's remote
  // frees is followed by an explicit unfull check (refill.cc), and a slab
  // goes onto the full list only with more than unfull_at blocks in use.
  Var<uint32_t> slow_at{0};

  // --- second cache line: owner fields of the slow paths ---
  alignas(kSlabLineSize) Var<uintptr_t> carve{0};  // next never-used block
  Var<uintptr_t> carve_end{0};
  Var<BasicSlab*> prev{nullptr}, next{nullptr};  // owner's heap list
  Var<uint8_t> dirty{0};  // pages may be resident (not decommitted)
  // When the slab was last released dirty (os::coarse_now_ns); a purge pass
  // decommits it once it has been free for the decay time.
  Var<uint64_t> released_at{0};
  // SlabReclaim: the owner CASes it before it hands out, drains or releases
  // a listed slab; a reclaimer CASes it to claim a listed slab with no live
  // block (core/heap/idle_reclaim_protocol.h). Slow paths only.
  Atomic<uint8_t> reclaim{kReclaimHeld};

  // --- third cache line, written by remote freers: their pushes do not
  // bounce the owner's lines ---
  alignas(kSlabLineSize) lockfree::RemoteFreeList<Block, P, typename Orders::Remote> remote;
  // Links the slab into its owner's NotifyQueue ("I received remote frees")
  // at most once at a time; see lockfree/notify_queue.h.
  Var<BasicSlab*> notify_next{nullptr};
  Atomic<uint8_t> notify_queued{0};

  void set_geometry(uintptr_t begin, uint32_t blocks, uint32_t size, uint32_t cls) {
    area_begin = begin;
    size_class = cls;
    block_size = size;
    set_divisor(size, blocks);
    const uint32_t quarter = blocks / kUnfullFraction;
    unfull_at = blocks - (quarter > 0 ? quarter : 1);
  }

  // The divisor of is_block_start: `blocks` blocks of `size` bytes (size > 0).
  void set_divisor(uint32_t size, uint32_t blocks) {
    capacity = blocks;
    size_shift = uint8_t(__builtin_ctz(size));
    const uint64_t odd = size >> size_shift;
    uint64_t inv = odd;  // Newton's iteration: each step doubles the correct low bits
    for (int i = 0; i < 5; ++i) inv *= 2 - odd * inv;
    odd_inverse = inv;
  }

  // Whether a block of this slab starts exactly at p, with one multiply, one
  // rotate and one compare. With block_size = o * 2^k (o odd, k =
  // size_shift) and off = p - area_begin (wrapping below the area):
  // rotr(off * o^-1, k) is off / block_size when block_size divides off;
  // otherwise a low bit of off that a multiple of 2^k lacks ends up in the
  // top k bits, or (off a multiple of 2^k) off / 2^k * o^-1 mod 2^(64-k)
  // exceeds (2^(64-k) - 1) / o (Granlund and Montgomery, "Division by
  // invariant integers using multiplication", 1994), and either way the
  // result is at least capacity (capacity * block_size <= 2^32).
  bool is_block_start(const void* p) const {
    const uint64_t off = reinterpret_cast<uintptr_t>(p) - area_begin;
    const uint64_t x = off * odd_inverse;
    const uint64_t q = (x >> size_shift) | (x << ((64 - size_shift) & 63));
    return q < capacity;
  }
  uintptr_t area_end() const { return area_begin + capacity * block_size; }

  uint32_t used_count() const { return used.load(MO::relaxed); }
  void set_used(uint32_t n) { used.store(n, MO::relaxed); }

  // Owner: returns a block to the free list. Returns the new number of used blocks.
  uint32_t push_local(Block* b, uintptr_t tag) {
    b->free_tag.store(tag);
    b->next.store(free.load());
    free.store(b);
    const uint32_t n = used_count() - 1;
    used.store(n, Orders::local_free);
    return n;
  }

  // Any non-owner thread. Returns true if the remote list was empty.
  bool push_remote(Block* b, uintptr_t tag) {
    b->free_tag.store(tag);
    return remote.push(b);
  }

  // Owner: moves every remotely freed block onto `free`. Returns how many.
  uint32_t drain_remote() {
    Block* chain = remote.take_all();
    if (chain == nullptr) return 0;
    uint32_t n = 1;
    Block* last = chain;
    for (Block* b = last->next.load(); b != nullptr; b = b->next.load()) {
      last = b;
      ++n;
    }
    last->next.store(free.load());
    free.store(chain);
    set_used(used_count() - n);
    return n;
  }

  // Owner: becomes owner of a slab it just claimed from a bitmap (the claim
  // was the acquire that makes the previous owner's writes visible).
  void take_ownership(Heap* heap) {
    state.store(kSlabOwned, MO::relaxed);
    // An RMW, not a store: a remote freer that finds no owner confirms it
    // with an RMW on `owner` too (remote_free_protocol.h, notify_owner), so
    // either it sees this owner and notifies it, or this owner's drain that
    // follows sees the freer's block (Orders::take says why acquire).
    // Linearization point of the change of owner for remote freers.
    owner.exchange(heap, Orders::take);
    prev.store(nullptr);
    next.store(nullptr);
    list.store(kOnNoList);
    slow_at.store(0);
  }

  // Owner: gives up ownership; the caller then sets the slab's bit in the
  // free or the adoptable bitmap (a release, publishing the fields above).
  void give_up_ownership(SlabState new_state) {
    owner.store(nullptr, MO::relaxed);
    state.store(new_state, MO::relaxed);
  }
};

}  // namespace hakmem
