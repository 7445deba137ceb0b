// Relacy models of the remote-free protocol as it ships: the templates of
// core/heap/remote_free_protocol.h (BasicRemoteFree::free_block, post,
// notify_owner, the batch add/flush, drain_notices, adopt_slab,
// abandon_slab) over BasicSlab<RelacyAtomics, FakeHeap> (core/meta/slab.h),
// the shipped lockfree::NotifyQueue, RemoteFreeList and SlabBitmap. The
// models call those templates; what they write themselves is only the
// scenario (who frees what, when an owner drains) and the checks.
//
// FakeHeap stands for ThreadHeap: it has the two members the protocol uses,
// `remote_notices` and `remote_batch`.
//
// 1. AdoptionNotice: the lost-notice race the confirming RMW in
//    notify_owner closes. A slab starts abandoned (owner null, adoptable
//    bit set) with two live blocks. Thread A adopts it (adopt_slab: claim,
//    take_ownership, drain), puts it on its full list and drains its notices
//    once. Thread F has no heap (a free after its thread's exit) and frees
//    both blocks through BasicRemoteFree::free_block: a direct post each. At the
//    end A drains its notices once more, visiting only what was queued --
//    as the real owner of a full slab does -- and the slab's remote list
//    must be empty: a block pushed while A owned the slab was announced to
//    A, or pushed before A's drain took it. Checked too: every block on the
//    free list once with its tag, used count 0.
//
// 2. BatchFlush: remote frees batched on the freeing side. Thread O owns
//    slabs S and T of one class (both full, every block live) and drains its
//    notices twice. Thread F1 (a heap with batching) frees two blocks of S
//    (both wait in its batch), one of T (a different slab of the class:
//    S's chain is flushed with one push_chain) and flushes at its exit.
//    Thread F2 (a heap with batching) frees one block of S and one of T
//    and flushes at its exit. After all threads, O drains its notices once
//    more; then both remote lists must be empty (no flush lost its notice),
//    every block is on its slab's free list exactly once with its tag, and
//    both used counts are 0 (a pending block stayed live for its slab
//    until it reached the owner).
//
// 3. BatchAbandon: a pending batch against an exiting owner. O owns S
//    (every block live), drains its notices once, then exits: drain the
//    remote list, release the slab if no block is live, else abandon it
//    (abandon_slab); before that it frees one block locally. F (batching)
//    frees S's three other blocks through
//    BasicRemoteFree::free_block, adopting the slab if it finds it abandoned (then
//    its later frees are local, as small_free's owner check makes them),
//    and flushes its batch at its exit. Because pending blocks count as live, O can never
//    see used == 0 while F holds any: O releases S only if F's flush came
//    before O's drain. After all threads, if S is abandoned an adopter
//    adopts it; the final owner's free list then holds every block once, and
//    a released slab must have every block on its free list (asserted at
//    the release: the only way to release with blocks pending would be a
//    used count that does not count them).
//
// Negative controls (each must be reported):
//  - RemoteFreeOrders::confirm_null_owner = false (the confirming RMW
//    deleted) in AdoptionNotice: F reads no owner with its relaxed load
//    although A adopted, gives the flag back, and its block sits on the
//    remote list of A's full slab with no notice: assertion in after().
//  - RemoteFreeOrders::confirm = relaxed in AdoptionNotice: the CAS comes
//    before A's exchange but does not release F's push to A's drain: the
//    same lost block (or a data race on the block's link).
//  - take_ownership's exchange relaxed (SlabOrders::take = relaxed) in
//    AdoptionNotice: A's exchange does not acquire F's confirmation: lost
//    block or data race.
//  - SlabBitmapOrders::release = relaxed for the adoptable bitmap in
//    BatchAbandon: the abandoning owner's writes to owner-private fields
//    (the free list its exit drain built) are not published to the freer
//    that adopts the slab: data race on the free list.
//  - RemoteFreeOrders::notify_on_flush = false in BatchFlush: a flush that
//    found the list empty does not notify: blocks stranded, assertion.
//  - RemoteFreeListOrders::push = relaxed for the slabs' remote lists in
//    BatchFlush: the flush's push_chain does not publish the batch's links
//    and tags: data race on a block's next/free_tag in the owner's drain.
//  - SplitCasAtomics (push_chain's CAS as load + store) in BatchFlush: two
//    flushes both "succeed" and one chain is lost: assertion.
#include <cstdint>

#include "core/heap/remote_free_protocol.h"
#include "core/meta/slab.h"
#include "lockfree/memory_order.h"
#include "lockfree/notify_queue.h"
#include "lockfree/remote_free_list.h"
#include "lockfree/slab_bitmap.h"
#include "model_checks/broken_orders.h"
#include "model_checks/fake_heap.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::MemoryOrder;
using lockfree::RelacyAtomics;
using lockfree::RemoteFreeListOrders;
using lockfree::RemoteFreeListRelaxedPush;
using lockfree::SlabBitmap;
using lockfree::SlabBitmapOrders;
using lockfree::SplitCasAtomics;


// Weakened protocol steps and orders for the negative controls.
struct NoConfirm : RemoteFreeOrders {
  static constexpr bool confirm_null_owner = false;
};
struct RelaxedConfirm : RemoteFreeOrders {
  static constexpr MemoryOrder confirm = MemoryOrder::relaxed;
};
struct NoNoticeOnFlush : RemoteFreeOrders {
  static constexpr bool notify_on_flush = false;
};
struct RelaxedTakeOwnership : DefaultSlabOrders {
  static constexpr MemoryOrder take = MemoryOrder::relaxed;
};
struct RelaxedRemotePush : DefaultSlabOrders {
  using Remote = RemoteFreeListRelaxedPush;
};

// Checks that `s`'s free list holds exactly the blocks [first, first + n)
// of `blocks`, each once and with its tag.
template <class Slab, class Block>
void expect_free_list(Slab& s, Block* blocks, unsigned first, unsigned n) {
  unsigned seen[8] = {};
  unsigned hops = 0;
  for (Block* b = s.free.load(); b != nullptr; b = b->next.load()) {
    RL_ASSERT(hops < n);  // acyclic, nothing extra
    if (hops++ >= n) return;
    RL_ASSERT(b >= &blocks[first] && b < &blocks[first + n]);
    const unsigned id = static_cast<unsigned>(b - &blocks[0]);
    RL_ASSERT(b->free_tag.load() == tag_of(id));
    ++seen[id - first];
  }
  for (unsigned k = 0; k < n; ++k) RL_ASSERT(seen[k] == 1);
}

// ---------------------------------------------------------------------------
template <class P, class Orders, class SlabOrders = DefaultSlabOrders>
struct AdoptionNotice : rl::test_suite<AdoptionNotice<P, Orders, SlabOrders>, 2> {
  using Heap = FakeHeap<P, SlabOrders>;
  using Slab = typename Heap::Slab;
  using Block = typename Slab::Block;
  using RF = BasicRemoteFree<Slab, Heap, Orders>;
  static constexpr unsigned kA = 0, kF = 1;
  static constexpr unsigned kBlocks = 2;
  static constexpr unsigned kIndex = 3;  // the slab's bit in the adoptable bitmap

  Slab slab;
  SlabBitmap<P> adoptable{0};
  Heap heap_a;
  Block blocks[kBlocks];

  AdoptionNotice() {
    slab.size_class = 0;
    // The slab's exited owner left it abandoned with every block live.
    slab.set_used(kBlocks);
    abandon_slab(adoptable, kIndex, &slab);
  }

  // The owner's visit of a notice (refill.cc take_remote_notices).
  void drain(Heap* h) {
    drain_notices(h, [](Slab* s) {
      RL_ASSERT(s->list.load() == kOnFullList);
      s->drain_remote();
    });
  }

  void thread(unsigned t) {
    if (t == kA) {
      RL_ASSERT(adopt_slab(adoptable, kIndex, &slab, &heap_a));
      slab.list.store(kOnFullList);  // SlabSource::acquire: no free block
      drain(&heap_a);
      return;
    }
    for (unsigned id = 0; id < kBlocks; ++id) {
      const RemoteFreeOutcome r = RF::free_block(nullptr, &slab, &blocks[id], tag_of(id),
                                           [](Slab*) { return false; });
      RL_ASSERT(r == RemoteFreeOutcome::kPosted);
    }
  }

  void after() {
    drain(&heap_a);  // only what was announced
    RL_ASSERT(slab.remote.empty());  // no lost notice
    RL_ASSERT(slab.owner.load(MemoryOrder::relaxed) == &heap_a);
    expect_free_list(slab, blocks, 0, kBlocks);
    RL_ASSERT(slab.used_count() == 0);
  }
};

// ---------------------------------------------------------------------------
template <class P, class Orders, class SlabOrders = DefaultSlabOrders>
struct BatchFlush : rl::test_suite<BatchFlush<P, Orders, SlabOrders>, 3> {
  using Heap = FakeHeap<P, SlabOrders>;
  using Slab = typename Heap::Slab;
  using Block = typename Slab::Block;
  using RF = BasicRemoteFree<Slab, Heap, Orders>;
  static constexpr unsigned kO = 0, kF1 = 1, kF2 = 2;
  // Blocks 0-2 are S's, 3-4 T's.
  static constexpr unsigned kS = 3, kT = 2;

  Slab s, t;
  Heap heaps[3];
  Block blocks[kS + kT];

  BatchFlush() {
    for (Slab* x : {&s, &t}) {
      x->size_class = 0;
      x->take_ownership(&heaps[kO]);
      x->list.store(kOnFullList);
    }
    s.set_used(kS);
    t.set_used(kT);
  }

  void drain(Heap* h) {
    drain_notices(h, [](Slab* x) {
      RL_ASSERT(x->list.load() == kOnFullList);
      x->drain_remote();
    });
  }

  void free_one(unsigned thread, unsigned id) {
    Slab* x = id < kS ? &s : &t;
    const RemoteFreeOutcome r = RF::free_block(&heaps[thread], x, &blocks[id], tag_of(id),
                                         [](Slab*) { return false; });
    RL_ASSERT(r == RemoteFreeOutcome::kBatched);
  }

  void thread(unsigned th) {
    switch (th) {
      case kO:
        drain(&heaps[kO]);
        P::pause();
        drain(&heaps[kO]);
        break;
      case kF1:
        free_one(th, 0);
        free_one(th, 1);
        free_one(th, 3);  // T: S's chain is flushed first
        RF::flush(heaps[th].remote_batch);  // thread exit
        RL_ASSERT(heaps[th].remote_batch.pending == 0);
        break;
      default:
        free_one(th, 2);
        free_one(th, 4);
        RF::flush(heaps[th].remote_batch);
        break;
    }
  }

  void after() {
    drain(&heaps[kO]);
    RL_ASSERT(s.remote.empty() && t.remote.empty());  // every flush announced
    expect_free_list(s, blocks, 0, kS);
    expect_free_list(t, blocks, kS, kT);
    RL_ASSERT(s.used_count() == 0 && t.used_count() == 0);
  }
};

// ---------------------------------------------------------------------------
template <class P, class Orders, class SlabOrders = DefaultSlabOrders,
          class BitmapOrders = SlabBitmapOrders>
struct BatchAbandon : rl::test_suite<BatchAbandon<P, Orders, SlabOrders, BitmapOrders>, 2> {
  using Heap = FakeHeap<P, SlabOrders>;
  using Slab = typename Heap::Slab;
  using Block = typename Slab::Block;
  using RF = BasicRemoteFree<Slab, Heap, Orders>;
  static constexpr unsigned kO = 0, kF = 1, kAdopter = 2;
  static constexpr unsigned kBlocks = 4;  // F frees 0-2, O frees 3 locally
  static constexpr unsigned kFreedByF = 3;
  static constexpr unsigned kIndex = 7;

  Slab slab;
  SlabBitmap<P, uint32_t, BitmapOrders> adoptable{0};
  SlabBitmap<P> free_bitmap{0};
  Heap heaps[3];
  Block blocks[kBlocks];

  BatchAbandon() {
    slab.size_class = 0;
    slab.take_ownership(&heaps[kO]);
    slab.set_used(kBlocks);
  }

  void thread(unsigned th) {
    if (th == kO) {
      slab.push_local(&blocks[kFreedByF], tag_of(kFreedByF));  // the owner's own free
      drain_notices(&heaps[kO], [](Slab* x) { x->drain_remote(); });
      // thread_exit -> abandon_or_release.
      slab.drain_remote();
      if (slab.used_count() == 0) {
        // SlabSource::release: only with every block back on the free list.
        expect_free_list(slab, blocks, 0, kBlocks);
        slab.give_up_ownership(kSlabFree);
        free_bitmap.release(kIndex);
      } else {
        RL_ASSERT(abandon_slab(adoptable, kIndex, &slab));
      }
      return;
    }
    // F: frees every block; an abandoned slab is adopted on free when it
    // can be (the adopter then frees locally, as free_remote does).
    for (unsigned id = 0; id < kFreedByF; ++id) {
      Heap* h = &heaps[kF];
      if (slab.owner.load(MemoryOrder::relaxed) == h) {  // small_free's owner check
        slab.push_local(&blocks[id], tag_of(id));
        continue;
      }
      const RemoteFreeOutcome r = RF::free_block(h, &slab, &blocks[id], tag_of(id), [&](Slab* x) {
        return adopt_slab(adoptable, kIndex, x, h);
      });
      RL_ASSERT(r != RemoteFreeOutcome::kFreeOfUnusedSlab);
      if (r == RemoteFreeOutcome::kAdopted) slab.push_local(&blocks[id], tag_of(id));
    }
    RF::flush(heaps[kF].remote_batch);  // thread exit
  }

  void after() {
    const bool released = (free_bitmap.snapshot() >> kIndex) & 1u;
    if (released) {
      RL_ASSERT(slab.state.load(MemoryOrder::relaxed) == kSlabFree);
      RL_ASSERT(slab.remote.empty());
      return;  // checked at the release
    }
    const bool abandoned = (adoptable.snapshot() >> kIndex) & 1u;
    if (abandoned) {
      RL_ASSERT(adopt_slab(adoptable, kIndex, &slab, &heaps[kAdopter]));
    } else {
      // F adopted it; its own drain at its next use of the slab.
      RL_ASSERT(slab.owner.load(MemoryOrder::relaxed) == &heaps[kF]);
      slab.drain_remote();
    }
    RL_ASSERT(slab.remote.empty());
    expect_free_list(slab, blocks, 0, kBlocks);
    RL_ASSERT(slab.used_count() == 0);
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::DefaultSlabOrders;
  using hakmem::RemoteFreeOrders;
  return ModelRun("remote_free_protocol_model", 1000000)
      .clean<AdoptionNotice<RelacyAtomics, RemoteFreeOrders>>(
          "adoption notice: adopter drains its notices vs a heapless freer's posts", 4)
      .clean<BatchFlush<RelacyAtomics, RemoteFreeOrders>>(
          "batch flush: two batching freers flush chains of two slabs vs their owner's drains", 2)
      .clean<BatchAbandon<RelacyAtomics, RemoteFreeOrders>>(
          "batch abandon: a batching freer (adopting on free) vs the owner's exit", 3)
      .control<AdoptionNotice<RelacyAtomics, NoConfirm>>(
          "adoption notice NEGATIVE CONTROL: confirming RMW on owner deleted",
          {rl::test_result_user_assert_failed})
      .control<AdoptionNotice<RelacyAtomics, RelaxedConfirm>>(
          "adoption notice NEGATIVE CONTROL: RemoteFreeOrders::confirm = relaxed",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .control<AdoptionNotice<RelacyAtomics, RemoteFreeOrders, RelaxedTakeOwnership>>(
          "adoption notice NEGATIVE CONTROL: take_ownership's exchange relaxed",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .control<BatchAbandon<RelacyAtomics, RemoteFreeOrders, DefaultSlabOrders,
                            hakmem::lockfree::SlabBitmapRelaxedRelease>>(
          "batch abandon NEGATIVE CONTROL: abandon_slab's release of the adoptable bit relaxed",
          {rl::test_result_data_race})
      .control<BatchFlush<RelacyAtomics, NoNoticeOnFlush>>(
          "batch flush NEGATIVE CONTROL: a flush that found the list empty does not notify",
          {rl::test_result_user_assert_failed})
      .control<BatchFlush<RelacyAtomics, RemoteFreeOrders, RelaxedRemotePush>>(
          "batch flush NEGATIVE CONTROL: RemoteFreeListOrders::push = relaxed",
          {rl::test_result_data_race})
      .control<BatchFlush<SplitCasAtomics, RemoteFreeOrders>>(
          "batch flush NEGATIVE CONTROL: push_chain's CAS split into load + store",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .finish();
}
