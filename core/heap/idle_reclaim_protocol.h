// Reclaiming the slabs of an idle owner: the handshake that lets any thread
// take back a slab whose blocks were all freed by other threads, while its
// owner makes no allocator call at all, without the owner ever waiting.
// Templates over the slab type (BasicSlab<P, Heap, SlabOrders>,
// core/meta/slab.h) and so over the atomics policy; the allocator
// instantiates them with DefaultAtomics (core/alloc/refill.cc,
// core/alloc/process.cc, core/heap/slab_source.cc) and
// model_checks/idle_reclaim_model.cc with RelacyAtomics.
//
// The problem. A slab on its owner's partial or full list has owner-private
// fields the owner writes without atomics (`free`, the list links, `carve`)
// and a used count only the owner lowers (push_local, drain_remote). Until
// now only the owner could see that its blocks had all come back (by
// draining the remote list), so an owner that stopped allocating kept them.
//
// The observation. `used` counts every block handed out and not yet back on
// `free`: live blocks, blocks pending in some freer's batch and blocks on the
// remote list. While a slab is listed and not current its count only falls
// (the owner's frees and drains), so a read of it, however stale, is at
// least the true count at any later instant. A thread that reads n blocks on
// the remote list and then a used count of n has seen every counted block on
// the list: none is live or pending, nobody can free into the slab any more
// (a free needs a live block), and only the owner could still hand its free
// blocks out -- which the handshake word excludes.
//
// The handshake word (Slab::reclaim, SlabReclaim):
//   Held --owner lists it (publish_listed, release store)--> Listed
//   Listed --owner takes it back (owner_take, CAS)--> Held
//   Listed --reclaimer claims it (try_reclaim, CAS)--> Claimed
//   Claimed --live blocks: restore (CAS)--> Listed
//   Claimed --no live block: purged, remote list taken (CAS)--> Done
//   Done --a purge pass holds it again (claim_done, CAS)--> Claimed
//   Done --owner resolves it (owner_take, CAS)--> Held, then releases it
//   Claimed --exiting owner gives it up (owner_detach, CAS)--> Detached
//   Detached --the claimer finishes it (store)--> Held: it releases or abandons it
//
// Why the owner never waits: every owner step is one CAS that either
// succeeds or tells the owner the slab is busy; a busy slab is skipped (left
// on its list, its notice queued again) and looked at on a later slow path.
// Only an exiting owner must get rid of every slab: it hands a claimed slab
// to its claimer (Detached) instead of waiting for it; its CAS fails only if
// the claimer moved on meanwhile, so its retry loop is lock-free.
//
// Why a reclaimer never touches a live block: it claims only a Listed slab
// (the owner is not handing out its blocks and cannot until it takes the
// slab back, which the claim excludes), and purges only after it counted
// every used block on the remote list (above). It never writes an owner
// field but `dirty` and `released_at` while it holds the claim; the owner
// reads them after taking the word back (an acquire CAS on the claimer's
// release). It clears the used count of a slab it reclaims (no block of it
// is live, so the owner's free cannot write it meanwhile).
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/meta/slab.h"
#include "lockfree/memory_order.h"
#include "lockfree/notify_queue.h"

namespace hakmem {

// Memory orders and steps of the handshake; a parameter only so the models
// can show a weakened protocol is caught.
struct IdleReclaimOrders {
  // publish_listed: the owner's release store of Listed publishes everything
  // it wrote to the slab before (the used count after retire_current, the
  // carve cursor, the free list head) to the reclaimer whose claim reads it.
  static constexpr lockfree::MemoryOrder list = lockfree::MemoryOrder::release;
  // owner_take's CAS. Acquire on success: it may read the Listed a
  // reclaimer restored, after walking the remote chain; the owner's drain
  // that follows relinks those blocks, which must come after the walk; and
  // its second CAS (Done -> Held) reads the reclaimer's release of Done,
  // after which the owner releases the slab and reads what the reclaimer
  // wrote (dirty, released_at, the emptied remote list). Relaxed on
  // failure: a failed first CAS that reads Done is followed by the second
  // CAS, which acquires the same store; any other failure only skips.
  static constexpr lockfree::MemoryOrder take = lockfree::MemoryOrder::acquire;
  static constexpr lockfree::MemoryOrder take_failure = lockfree::MemoryOrder::relaxed;
  // try_reclaim's and claim_done's CAS, linearization point of a claim.
  // Acquire: the owner's publication of the listed slab (above), or the
  // previous claimer's release of Done.
  static constexpr lockfree::MemoryOrder claim = lockfree::MemoryOrder::acquire;
  // The claimer's CAS out of Claimed (to Listed or Done). Release on
  // success: its walk of the chain and its writes (dirty, released_at, the
  // purge) happen before the owner's next step. Acquire on failure: it read
  // Detached, and the claimer then owns the slab's owner fields, which the
  // exiting owner wrote before its release CAS.
  static constexpr lockfree::MemoryOrder finish = lockfree::MemoryOrder::release;
  static constexpr lockfree::MemoryOrder finish_failure = lockfree::MemoryOrder::acquire;
  // owner_detach's CAS Claimed -> Detached. Release: the exiting owner's
  // last writes (off its list, owner cleared) reach the claimer that
  // finishes the slab. Relaxed on failure: the owner then retries
  // owner_take, whose CASes acquire what they read.
  static constexpr lockfree::MemoryOrder detach = lockfree::MemoryOrder::release;
  static constexpr lockfree::MemoryOrder detach_failure = lockfree::MemoryOrder::relaxed;
  // The reclaimer's load of the remote list's head. Acquire: it walks the
  // links the freers' pushes published.
  static constexpr lockfree::MemoryOrder peek = lockfree::MemoryOrder::acquire;
  // The reclaimer's load of the used count. Acquire: it pairs with the
  // owner's release store in push_local (DefaultSlabOrders::local_free), so
  // the owner's writes to the block it freed last happen before the purge.
  static constexpr lockfree::MemoryOrder used = lockfree::MemoryOrder::acquire;
  // The reclaimer compares the chain with the used count (false only in a
  // negative control: it would reclaim a slab with live blocks).
  static constexpr bool count_blocks = true;
};

// What owner_take found.
enum class OwnerTake : uint8_t {
  kTaken,      // the owner holds the slab again (Held)
  kReclaimed,  // it was reclaimed; the owner holds it (Held) and must release it
  kBusy,       // a reclaimer or purge pass holds it: leave it for now
};

// What try_reclaim did.
enum class ReclaimOutcome : uint8_t {
  kNotListed,  // not claimable (owner's, busy or reclaimed already)
  kLive,       // claimed, but a block may be live or pending: given back
  kReclaimed,  // reclaimed (Done), or finished for an owner that detached it
};

template <class Slab, class Orders = IdleReclaimOrders>
struct BasicIdleReclaim {
  using Block = typename Slab::Block;
  using MO = lockfree::MemoryOrder;

  // Owner: the slab (Held) goes onto one of its lists. Linearization point
  // of "claimable": this release store.
  static void publish_listed(Slab* s) { s->reclaim.store(kReclaimListed, Orders::list); }

  // Owner: takes a listed slab back before handing out, draining, releasing
  // or abandoning it. One CAS (Listed -> Held, its linearization point), and
  // a second one (Done -> Held) if a reclaimer finished it: never a wait.
  static OwnerTake owner_take(Slab* s) {
    uint8_t expected = kReclaimListed;
    if (s->reclaim.compare_exchange_strong(expected, kReclaimHeld, Orders::take, Orders::take_failure)) {
      return OwnerTake::kTaken;
    }
    if (expected != kReclaimDone) return OwnerTake::kBusy;
    if (s->reclaim.compare_exchange_strong(expected, kReclaimHeld, Orders::take, Orders::take_failure)) {
      return OwnerTake::kReclaimed;
    }
    return OwnerTake::kBusy;  // a purge pass holds the reclaimed slab
  }

  // Owner: a listed slab it found empty (used count 0, after a local free):
  // `release(s, reclaimed)` gives it back to its chunk once the owner holds
  // it; a slab a claimer holds is left to it (the claimer reclaims it, or
  // gives it back to a later pass, which reclaims it). Returns whether it
  // was released.
  template <class Release>
  static bool release_if_taken(Slab* s, Release&& release) {
    const OwnerTake r = owner_take(s);
    if (r == OwnerTake::kBusy) return false;
    release(s, r == OwnerTake::kReclaimed);
    return true;
  }

  // Owner: drains a listed slab that received remote frees (or was
  // reclaimed). The drain relinks blocks a claimer may be counting, so the
  // owner takes the slab back first; if it is empty then (or was reclaimed)
  // `release(s, reclaimed)` gives it back, else it is listed again. Returns
  // false, having done nothing, if a claimer holds it.
  template <class Release>
  static bool drain_listed(Slab* s, Release&& release) {
    const OwnerTake r = owner_take(s);
    if (r == OwnerTake::kBusy) return false;
    if (r == OwnerTake::kTaken) {
      s->drain_remote();
      if (s->used_count() != 0) {
        publish_listed(s);
        return true;
      }
    }
    release(s, r == OwnerTake::kReclaimed);
    return true;
  }

  // Exiting owner, which has taken `s` off its list: either it holds the
  // slab again (kTaken / kReclaimed, as owner_take) or it gave it to its
  // claimer (returns kBusy: the claimer finishes it; `give_up` has run
  // before the release CAS that hands the slab over). Lock-free: a CAS fails
  // only when the claimer moved the word.
  template <class GiveUp>
  static OwnerTake owner_detach(Slab* s, GiveUp&& give_up) {
    for (bool given_up = false;;) {
      const OwnerTake r = owner_take(s);
      if (r != OwnerTake::kBusy) return r;
      if (!given_up) {
        give_up(s);  // owner cleared: from here on the owner's own frees are remote
        given_up = true;
      }
      uint8_t expected = kReclaimClaimed;
      // Linearization point of the hand-over.
      if (s->reclaim.compare_exchange_strong(expected, kReclaimDetached, Orders::detach,
                                             Orders::detach_failure)) {
        return OwnerTake::kBusy;
      }
    }
  }

  // Any thread: reclaims listed slab `s` if none of its blocks is live.
  // `purge(s)` returns the pages per policy (it may read the owner's carve
  // cursor and write `dirty` and `released_at`); `orphan(s, reclaimed)`
  // finishes a slab its exiting owner detached meanwhile (release it if
  // `reclaimed`, else drain it and release or abandon it). On success the
  // owner is told through its notice queue, and releases the slab on its
  // next drain.
  template <class Purge, class Orphan>
  static ReclaimOutcome try_reclaim(Slab* s, Purge&& purge, Orphan&& orphan) {
    if (s->reclaim.load(MO::relaxed) != kReclaimListed) return ReclaimOutcome::kNotListed;
    uint8_t expected = kReclaimListed;
    // Linearization point of the claim (acquire: the owner's publication;
    // relaxed on failure: nothing is read then).
    if (!s->reclaim.compare_exchange_strong(expected, kReclaimClaimed, Orders::claim, MO::relaxed)) {
      return ReclaimOutcome::kNotListed;
    }
    // The head with acquire (the pushes' links), the count with acquire (the
    // owner's last local free): see IdleReclaimOrders.
    if constexpr (Orders::count_blocks) {
      // No consumer relinks the chain while we hold the claim (the owner's
      // drains need the word); pushes only add nodes above the head we read.
      uint32_t n = 0;
      for (Block* b = s->remote.peek(Orders::peek); b != nullptr; b = b->next.load()) ++n;
      if (n != s->used.load(Orders::used)) {
        return finish(s, kReclaimListed, orphan) ? ReclaimOutcome::kLive : ReclaimOutcome::kReclaimed;
      }
    }
    // No live block: nothing can be pushed any more, the chain is garbage,
    // and the used count is ours to clear (the owner writes it only for a
    // live block's free, or after taking the word back).
    s->remote.take_all();
    s->set_used(0);
    purge(s);
    if (finish(s, kReclaimDone, orphan)) notify_owner(s);
    return ReclaimOutcome::kReclaimed;
  }

  // A purge pass: holds a reclaimed slab (Done -> Claimed) to decommit its
  // pages once they have decayed. `purge(s)` as in try_reclaim.
  template <class Purge, class Orphan>
  static bool claim_done(Slab* s, Purge&& purge, Orphan&& orphan) {
    if (s->reclaim.load(MO::relaxed) != kReclaimDone) return false;
    uint8_t expected = kReclaimDone;
    if (!s->reclaim.compare_exchange_strong(expected, kReclaimClaimed, Orders::claim, MO::relaxed)) {
      return false;
    }
    purge(s);
    finish(s, kReclaimDone, orphan);
    return true;
  }

  // The claimer leaves Claimed for `to`; if the exiting owner detached the
  // slab meanwhile, the claimer finishes it with `orphan` and returns false.
  template <class Orphan>
  static bool finish(Slab* s, uint8_t to, Orphan&& orphan) {
    uint8_t expected = kReclaimClaimed;
    // Linearization point of the restore or of the reclaim.
    if (s->reclaim.compare_exchange_strong(expected, to, Orders::finish, Orders::finish_failure)) {
      return true;
    }
    // Detached: the slab is ours, on no list, with no owner.
    s->reclaim.store(kReclaimHeld, MO::relaxed);
    orphan(s, to == kReclaimDone);
    return false;
  }

  // Tells the owner of a reclaimed slab, through its notice queue (at most
  // once at a time per slab, NotifyQueue::try_claim), so that its next
  // drain releases it. The owner is read relaxed: it was set before the
  // slab was listed (the claim acquired it) and only the owner clears it,
  // on its exit; an owner that reads Done itself needs no notice, so a null
  // owner gives the flag back.
  static void notify_owner(Slab* s) {
    using Queue = std::remove_reference_t<decltype(s->owner.load(MO::relaxed)->remote_notices)>;
    if (!Queue::try_claim(s)) return;
    if (auto* owner = s->owner.load(MO::relaxed)) {
      owner->remote_notices.push_claimed(s);
    } else {
      Queue::unclaim(s);
    }
  }

  // Owner, visiting a notice of a slab it could not take (kBusy): queues the
  // slab on its own notices again, so a later drain looks at it once the
  // claimer is done. The flag exchange orders the claimer's finish before
  // that visit.
  template <class Heap>
  static void renotify(Heap* heap, Slab* s) {
    using Queue = std::remove_reference_t<decltype(heap->remote_notices)>;
    if (Queue::try_claim(s)) heap->remote_notices.push_claimed(s);
  }
};

}  // namespace hakmem
