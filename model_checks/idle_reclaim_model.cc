// Relacy models of the reclaim of an idle owner's slabs as it ships: the
// templates of core/heap/idle_reclaim_protocol.h (BasicIdleReclaim:
// publish_listed, owner_take, release_if_taken, drain_listed, renotify,
// owner_detach, try_reclaim, finish, notify_owner) over
// BasicSlab<RelacyAtomics, FakeHeap, SlabOrders> (core/meta/slab.h), with
// the shipped remote-free protocol (BasicRemoteFree::free_block), NotifyQueue,
// RemoteFreeList and SlabBitmap. The models write only the scenario and the
// checks. A reclaimer's purge is modelled as plain writes to every block's
// fields and to the slab's `dirty` (the pages are zeroed), after a read of
// the owner's carve cursor (touched_bytes): Relacy reports a data race if
// any of it is unordered with an owner's or a freer's access, and the
// checks catch a purge of a live block.
//
// 1. ReclaimVsFrees (3 threads). Slab S is O's current slab with 3 live
//    blocks. O retires it (writes carve and used, lists it with
//    publish_listed), frees block 2 locally (push_local; an empty slab goes
//    through release_if_taken, as refill.cc's unfull) and drains its notices
//    once (drain_listed, renotify when busy, as take_remote_notices). F has
//    no heap and frees blocks 0 and 1 (free_block: a post each, notifying O).
//    R tries to reclaim S twice (try_reclaim). At the end O drains its
//    notices once more, a later reclaim pass runs if S is still listed, and
//    O drains again: S must have been released exactly once; if it was
//    purged, its remote list was empty and no block was freed after the
//    purge; if not, all three blocks were on its free list at the release.
//
// 2. ExitDuringReclaim (2 threads). O owns two listed slabs: S, whose two
//    blocks were both freed remotely (chain of 2, used 2: reclaimable), and
//    T, one of whose two blocks is still live (chain of 1, used 2). O exits:
//    takes each off its list and gives it up with owner_detach, then
//    releases or abandons what it got back (thread_exit's leave_listed). R
//    tries to reclaim S and T; a slab its owner detached meanwhile R
//    finishes (release if reclaimed, else drain and release or abandon, as
//    SlabSource::finish_detached). At the end S is released exactly once and
//    T is abandoned (never released: it has a live block), with its one
//    freed block on its free list.
//
// Negative controls (each must be reported):
//  - IdleReclaimOrders::count_blocks = false (the chain/used comparison
//    skipped), ReclaimVsFrees: a live block is purged.
//  - IdleReclaimOrders::list = relaxed, ReclaimVsFrees: R's claim does not
//    see O's retire (carve): data race.
//  - IdleReclaimOrders::claim = relaxed, ReclaimVsFrees: the same race.
//  - IdleReclaimOrders::finish = relaxed, ReclaimVsFrees: R's walk of the
//    chain (or its purge) unordered with O's drain (or release).
//  - IdleReclaimOrders::take = relaxed, ReclaimVsFrees: the same, from O's side.
//  - IdleReclaimOrders::peek = relaxed, ReclaimVsFrees: R walks links F's
//    pushes did not publish to it.
//  - IdleReclaimOrders::used = relaxed, and DefaultSlabOrders::local_free =
//    relaxed, ReclaimVsFrees: R's purge of the block O freed last is
//    unordered with O's writes to it.
//  - IdleReclaimOrders::detach = relaxed, ExitDuringReclaim: R finishes a
//    detached slab without seeing O's last writes to it.
//  - IdleReclaimOrders::finish_failure = relaxed, ExitDuringReclaim: the same.
#include <cstdint>

#include "core/heap/idle_reclaim_protocol.h"
#include "core/heap/remote_free_protocol.h"
#include "core/meta/slab.h"
#include "lockfree/memory_order.h"
#include "lockfree/notify_queue.h"
#include "lockfree/remote_free_list.h"
#include "lockfree/slab_bitmap.h"
#include "model_checks/broken_orders.h"
#include "model_checks/fake_heap.h"
#include "model_checks/model_runner.h"

namespace hakmem::model {
namespace {

using lockfree::MemoryOrder;
using lockfree::RelacyAtomics;
using lockfree::SlabBitmap;

constexpr uintptr_t kCarve = 0x1000;  // the retired slab's carve cursor

// Weakened handshakes for the negative controls.
struct NoCount : IdleReclaimOrders {
  static constexpr bool count_blocks = false;
};
struct RelaxedList : IdleReclaimOrders {
  static constexpr MemoryOrder list = MemoryOrder::relaxed;
};
struct RelaxedClaim : IdleReclaimOrders {
  static constexpr MemoryOrder claim = MemoryOrder::relaxed;
};
struct RelaxedFinish : IdleReclaimOrders {
  static constexpr MemoryOrder finish = MemoryOrder::relaxed;
};
struct RelaxedTake : IdleReclaimOrders {
  static constexpr MemoryOrder take = MemoryOrder::relaxed;
};
struct RelaxedPeek : IdleReclaimOrders {
  static constexpr MemoryOrder peek = MemoryOrder::relaxed;
};
struct RelaxedUsed : IdleReclaimOrders {
  static constexpr MemoryOrder used = MemoryOrder::relaxed;
};
struct RelaxedDetach : IdleReclaimOrders {
  static constexpr MemoryOrder detach = MemoryOrder::relaxed;
};
struct RelaxedFinishFailure : IdleReclaimOrders {
  static constexpr MemoryOrder finish_failure = MemoryOrder::relaxed;
};
struct RelaxedLocalFree : DefaultSlabOrders {
  static constexpr MemoryOrder local_free = MemoryOrder::relaxed;
};

// A reclaimer's purge: reads the carve cursor (touched_bytes), zeroes every
// block's first words and marks the slab clean.
template <class Slab, class Block>
void purge(Slab* s, Block* blocks, unsigned n) {
  RL_ASSERT(s->carve.load() == kCarve);
  for (unsigned k = 0; k < n; ++k) {
    blocks[k].next.store(nullptr);
    blocks[k].free_tag.store(0);
  }
  s->dirty.store(0);
}

// ---------------------------------------------------------------------------
// F frees blocks [0, kRemote) remotely, O the rest locally.
template <class P, class Orders, unsigned kRemote, class SlabOrders = DefaultSlabOrders>
struct ReclaimVsFrees : rl::test_suite<ReclaimVsFrees<P, Orders, kRemote, SlabOrders>, 3> {
  using Heap = FakeHeap<P, SlabOrders>;
  using Slab = typename Heap::Slab;
  using Block = typename Slab::Block;
  using RF = BasicRemoteFree<Slab, Heap>;
  using IR = BasicIdleReclaim<Slab, Orders>;
  static constexpr unsigned kO = 0, kF = 1, kR = 2;
  static constexpr unsigned kBlocks = 3;

  Slab s;
  Heap heap;
  Block blocks[kBlocks];
  typename P::template Var<unsigned> releases{0};
  typename P::template Var<bool> purged{false};
  // Set by each free after its block is handed over (relaxed: only checked
  // at the end, and by the purge of a block whose free it must follow).
  typename P::template Atomic<unsigned> freed{0};

  ReclaimVsFrees() {
    s.size_class = 0;
    s.take_ownership(&heap);  // current, every block live
    s.dirty.store(1);
  }

  // SlabSource::release / release_reclaimed, as far as the slab goes.
  void release(Slab* x, bool reclaimed) {
    if (reclaimed) {
      RL_ASSERT(x->remote.empty());
      RL_ASSERT(x->dirty.load() == 0);
    } else {
      RL_ASSERT(x->used_count() == 0);
      unsigned n = 0;
      for (Block* b = x->free.load(); b != nullptr && n <= kBlocks; b = b->next.load()) {
        RL_ASSERT(b->free_tag.load() == tag_of(unsigned(b - blocks)));
        ++n;
      }
      RL_ASSERT(n == kBlocks);
    }
    x->free.store(nullptr);
    x->set_used(0);
    x->list.store(kOnNoList);
    releases.store(releases.load() + 1);
  }

  // refill.cc take_remote_notices.
  void take_notices() {
    drain_notices(&heap, [this](Slab* x) {
      if (x->list.load() == kOnNoList) return;
      if (!IR::drain_listed(x, [this](Slab* y, bool r) { release(y, r); })) IR::renotify(&heap, x);
    });
  }

  ReclaimOutcome reclaim() {
    return IR::try_reclaim(
        &s,
        [this](Slab* x) {
          // Every block was freed before (a purge never follows a live block).
          RL_ASSERT(freed.load(MemoryOrder::relaxed) == kBlocks);
          purge(x, blocks, kBlocks);
          purged.store(true);
        },
        [](Slab*, bool) { RL_ASSERT(false); });  // nobody detaches here
  }

  void thread(unsigned t) {
    if (t == kO) {
      // retire_current + slab_list_add(full): used and carve, then listed.
      s.carve.store(kCarve);
      s.set_used(kBlocks);
      s.list.store(kOnFullList);
      IR::publish_listed(&s);
      for (unsigned id = kRemote; id < kBlocks; ++id) {
        freed.fetch_add(1, MemoryOrder::relaxed);
        if (s.push_local(&blocks[id], tag_of(id)) == 0) {  // local_free_slow -> unfull
          IR::release_if_taken(&s, [this](Slab* y, bool r) { release(y, r); });
        }
      }
      take_notices();
      return;
    }
    if (t == kF) {
      for (unsigned id = 0; id < kRemote; ++id) {
        freed.fetch_add(1, MemoryOrder::relaxed);
        RF::free_block(nullptr, &s, &blocks[id], tag_of(id), [](Slab*) { return false; });
      }
      return;
    }
    for (int k = 0; k < 2; ++k) {
      if (reclaim() != ReclaimOutcome::kNotListed) break;
      P::pause();
    }
  }

  void after() {
    take_notices();
    if (s.reclaim.load(MemoryOrder::relaxed) == kReclaimListed) {
      // Still listed (every block free, but R gave it back or found it
      // busy): a later reclaim pass takes it.
      RL_ASSERT(reclaim() == ReclaimOutcome::kReclaimed);
      take_notices();
    }
    RL_ASSERT(releases.load() == 1);
    RL_ASSERT(s.reclaim.load(MemoryOrder::relaxed) == kReclaimHeld);
    RL_ASSERT(s.remote.empty());
  }
};

// ---------------------------------------------------------------------------
template <class P, class Orders, class SlabOrders = DefaultSlabOrders>
struct ExitDuringReclaim : rl::test_suite<ExitDuringReclaim<P, Orders, SlabOrders>, 2> {
  using Heap = FakeHeap<P, SlabOrders>;
  using Slab = typename Heap::Slab;
  using Block = typename Slab::Block;
  using IR = BasicIdleReclaim<Slab, Orders>;
  static constexpr unsigned kO = 0, kR = 1;
  static constexpr unsigned kS = 0, kT = 1;  // slab indices (and bitmap bits)

  Slab slabs[2];
  Heap heap;
  Block blocks[2][2];
  SlabBitmap<P> free_bits{0};
  SlabBitmap<P> adoptable{0};
  typename P::template Var<unsigned> releases[2];

  ExitDuringReclaim() {
    for (unsigned k = 0; k < 2; ++k) {
      Slab& x = slabs[k];
      x.size_class = 0;
      x.take_ownership(&heap);
      x.dirty.store(1);
      x.carve.store(kCarve);
      x.set_used(2);
      x.list.store(kOnFullList);
      IR::publish_listed(&x);
      releases[k].store(0);
    }
    // S: both blocks freed remotely; T: block 0 freed, block 1 live.
    for (unsigned id = 0; id < 2; ++id) {
      blocks[kS][id].free_tag.store(tag_of(id));
      slabs[kS].remote.push(&blocks[kS][id]);
    }
    blocks[kT][0].free_tag.store(tag_of(0));
    slabs[kT].remote.push(&blocks[kT][0]);
  }

  unsigned index(Slab* x) { return unsigned(x - slabs); }

  // SlabSource::release (and release_reclaimed): to the free bitmap.
  void release(Slab* x) {
    RL_ASSERT(x->list.load() == kOnNoList);
    RL_ASSERT(index(x) == kS);  // T has a live block
    x->free.store(nullptr);
    x->set_used(0);
    x->give_up_ownership(kSlabFree);
    releases[index(x)].store(releases[index(x)].load() + 1);
    free_bits.release(index(x));
  }

  // process.cc abandon_or_release / SlabSource::finish_detached.
  void drain_and_leave(Slab* x) {
    x->drain_remote();
    if (x->used_count() == 0) {
      release(x);
    } else {
      RL_ASSERT(abandon_slab(adoptable, index(x), x));
    }
  }

  void finish_detached(Slab* x, bool reclaimed) {
    if (reclaimed) {
      release(x);
    } else {
      drain_and_leave(x);
    }
  }

  void thread(unsigned t) {
    if (t == kO) {
      // thread_exit: pop each listed slab, leave_listed.
      for (Slab& x : slabs) {
        x.list.store(kOnNoList);  // slab_list_pop
        const OwnerTake r = IR::owner_detach(&x, [](Slab* y) { y->give_up_ownership(kSlabAbandoned); });
        if (r == OwnerTake::kTaken) {
          drain_and_leave(&x);
        } else if (r == OwnerTake::kReclaimed) {
          release(&x);
        }
      }
      return;
    }
    for (Slab& x : slabs) {
      IR::try_reclaim(
          &x,
          [this](Slab* y) {
            RL_ASSERT(index(y) == kS);  // T has a live block: never purged
            purge(y, blocks[index(y)], 2);
          },
          [this](Slab* y, bool reclaimed) { finish_detached(y, reclaimed); });
    }
  }

  void after() {
    RL_ASSERT(releases[kS].load() == 1);
    RL_ASSERT(((free_bits.snapshot() >> kS) & 1u) == 1);
    RL_ASSERT(releases[kT].load() == 0);
    RL_ASSERT(((adoptable.snapshot() >> kT) & 1u) == 1);
    Slab& t = slabs[kT];
    RL_ASSERT(t.state.load(MemoryOrder::relaxed) == kSlabAbandoned);
    RL_ASSERT(t.used_count() == 1);
    RL_ASSERT(t.free.load() == &blocks[kT][0] && t.free.load()->next.load() == nullptr);
    for (Slab& x : slabs) RL_ASSERT(x.reclaim.load(MemoryOrder::relaxed) == kReclaimHeld);
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::DefaultSlabOrders;
  using hakmem::IdleReclaimOrders;
  const std::initializer_list<rl::test_result_e> race_or_assert = {
      rl::test_result_data_race, rl::test_result_user_assert_failed};
  return ModelRun("idle_reclaim_model", 1000000)
      .clean<ReclaimVsFrees<RelacyAtomics, IdleReclaimOrders, 2>>(
          "reclaim vs frees: a reclaimer vs the owner's retire, local free and drain, and a heapless freer", 2)
      .clean<ReclaimVsFrees<RelacyAtomics, IdleReclaimOrders, 3>>(
          "reclaim vs remote frees: a reclaimer vs the owner's retire and drain, every block freed remotely", 2)
      .clean<ExitDuringReclaim<RelacyAtomics, IdleReclaimOrders>>(
          "exit during reclaim: the owner exits (owner_detach) while a reclaimer claims its two slabs", 3)
      .control<ReclaimVsFrees<RelacyAtomics, NoCount, 2>>(
          "reclaim vs frees NEGATIVE CONTROL: chain/used count skipped", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, RelaxedList, 3>>(
          "reclaim vs frees NEGATIVE CONTROL: IdleReclaimOrders::list = relaxed", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, RelaxedClaim, 3>>(
          "reclaim vs frees NEGATIVE CONTROL: IdleReclaimOrders::claim = relaxed", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, RelaxedFinish, 2>>(
          "reclaim vs frees NEGATIVE CONTROL: IdleReclaimOrders::finish = relaxed", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, RelaxedTake, 2>>(
          "reclaim vs frees NEGATIVE CONTROL: IdleReclaimOrders::take = relaxed", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, RelaxedPeek, 3>>(
          "reclaim vs frees NEGATIVE CONTROL: IdleReclaimOrders::peek = relaxed", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, RelaxedUsed, 2>>(
          "reclaim vs frees NEGATIVE CONTROL: IdleReclaimOrders::used = relaxed", race_or_assert)
      .control<ReclaimVsFrees<RelacyAtomics, IdleReclaimOrders, 2, RelaxedLocalFree>>(
          "reclaim vs frees NEGATIVE CONTROL: DefaultSlabOrders::local_free = relaxed", race_or_assert)
      .control<ExitDuringReclaim<RelacyAtomics, RelaxedDetach>>(
          "exit during reclaim NEGATIVE CONTROL: IdleReclaimOrders::detach = relaxed", race_or_assert)
      .control<ExitDuringReclaim<RelacyAtomics, RelaxedFinishFailure>>(
          "exit during reclaim NEGATIVE CONTROL: IdleReclaimOrders::finish_failure = relaxed",
          race_or_assert)
      .finish();
}
