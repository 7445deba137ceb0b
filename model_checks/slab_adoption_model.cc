// Relacy model of slab abandonment and adoption (invariants I2, I3) on the
// shipped slab descriptor, BasicSlab<RelacyAtomics, FakeHeap> (core/meta/slab.h),
// with a lockfree::SlabBitmap standing for its chunk's adoptable bitmap, and
// the shipped protocol templates of core/heap/remote_free_protocol.h:
// adopt_slab (what SlabSource::try_adopt and collect_abandoned do),
// abandon_slab (SlabSource::abandon) and BasicRemoteFree::free_block
// (free_remote's protocol). FakeHeap has the members those templates use.
//
// The slab starts owned by thread A with every block live. Concurrently:
//  - thread A frees two blocks locally, then exits as thread_exit does
//    (abandon_or_release): drains the slab's remote list and, blocks still
//    being live, abandons the slab (abandon_slab);
//  - thread B frees two blocks: a free into a slab B owns is local (the
//    owner check of small_free); otherwise BasicRemoteFree::free_block, which
//    reads the slab's state and, if it is abandoned, tries to adopt it
//    (adopt_slab) -- B then frees locally -- or else pushes the block onto
//    the slab's remote list and notifies the owner (B's heap does not batch
//    here; the batch is remote_free_protocol_model's subject);
//  - thread C tries (up to 5 times) to adopt the slab (adopt_slab, as
//    SlabSource::acquire's try_adopt); once it owns it, it frees a block
//    locally and exits, abandoning the slab again (so B may adopt it after C).
//
// Checked:
//  - I2, one owner at a time: each owner increments a relaxed owner count
//    that must go 0 -> 1, writes and reads back a plain "holder" field, and
//    touches the slab's owner-private fields (free list, heap-list links:
//    rl::var members of BasicSlab). Two owners at once fail the count, and
//    an ownership hand-over that does not order the previous owner's plain
//    writes before the next owner's is a data race;
//  - I3, nothing lost or duplicated: after every thread finished, the
//    slab's final owner (or, if the slab ended abandoned, one more adopter)
//    drains its remote list. Then every freed block is on the free list
//    exactly once with its free tag, no live block is on it, the used count
//    equals the number of live blocks, and ownership state is consistent
//    (owner, state and adoptable bit agree).
//
// Negative controls: the same model with
//  - SlabBitmapOrders::release = relaxed (abandoning does not publish the
//    old owner's writes: data race on the slab's owner-private fields);
//  - SlabBitmapOrders::claim = relaxed (adopting does not acquire them:
//    data race);
//  - a policy whose bit_test_and_reset is a load then a store (B and C both
//    claim the adoptable bit: two owners, a data race in take_ownership; or
//    a claim overwrites the abandoning owner's release and the slab is
//    neither owned nor adoptable).
#include <cstdint>

#include "core/heap/remote_free_protocol.h"
#include "core/meta/slab.h"
#include "lockfree/memory_order.h"
#include "lockfree/slab_bitmap.h"
#include "model_checks/broken_orders.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::MemoryOrder;
using lockfree::RelacyAtomics;
using lockfree::SlabBitmap;
using lockfree::SlabBitmapOrders;
using lockfree::SplitTestAndResetAtomics;

constexpr unsigned kThreads = 3;
constexpr unsigned kA = 0, kB = 1, kC = 2;
constexpr unsigned kFinal = kThreads;  // after(): the last adopter
constexpr unsigned kNoOwner = ~0u;
constexpr unsigned kSlabIndex = 5;     // the slab's bit in the adoptable bitmap

// Block ids: who frees which; block 5 stays live throughout.
constexpr unsigned kBlocks = 6;
constexpr unsigned kFreedByA[] = {0, 1};
constexpr unsigned kFreedByB[] = {2, 3};
constexpr unsigned kFreedByC = 4;
constexpr unsigned kCAdoptAttempts = 5;

// Stands for ThreadHeap: the slab stores and compares its address, the
// protocol uses its notice queue and batch.
template <class P>
struct FakeHeap {
  using Slab = BasicSlab<P, FakeHeap>;
  unsigned thread = 0;
  lockfree::NotifyQueue<Slab, P> remote_notices;
  BasicRemoteBatch<Slab, 1> remote_batch;
  FakeHeap() { remote_batch.reset(false); }
};

constexpr uintptr_t tag_of(unsigned id) { return 0x7a600000u + id; }

template <class P, class BitmapOrders>
struct AdoptionModel : rl::test_suite<AdoptionModel<P, BitmapOrders>, kThreads> {
  using Heap = FakeHeap<P>;
  using Slab = typename Heap::Slab;
  using Block = typename Slab::Block;

  Slab slab;
  SlabBitmap<P, uint32_t, BitmapOrders> adoptable{0};
  Heap heaps[kThreads + 1];
  Block blocks[kBlocks];

  // Checker state. The owner count is a relaxed atomic (it must not add
  // synchronisation); `holder` is plain and touched only by the owner.
  typename P::template Atomic<unsigned> owners{0};
  typename P::template Var<unsigned> holder{kNoOwner};
  // Entry i written only by the thread that frees block i, read in after().
  bool freed[kBlocks] = {};

  AdoptionModel() {
    for (unsigned t = 0; t <= kThreads; ++t) heaps[t].thread = t;
    // A owns the slab and has handed out every block.
    slab.take_ownership(&heaps[kA]);
    become_owner(kA);
    slab.set_used(kBlocks);
  }

  void become_owner(unsigned t) {
    const unsigned before = owners.fetch_add(1, MemoryOrder::relaxed);
    RL_ASSERT(before == 0);  // I2
    holder.store(t);
  }

  void stop_owning(unsigned t) {
    RL_ASSERT(holder.load() == t);
    holder.store(kNoOwner);
    owners.fetch_sub(1, MemoryOrder::relaxed);
  }

  bool owns(unsigned t) { return slab.owner.load(MemoryOrder::relaxed) == &heaps[t]; }

  // The owner's heap-list bookkeeping (thread_heap.h slab_list_push and
  // slab_list_remove, the slab being alone on the list): owner-private
  // fields of the slab.
  void list_push(SlabList which) {
    slab.prev.store(nullptr);
    slab.next.store(nullptr);
    slab.list.store(which);
  }
  void list_remove() {
    if (slab.list.load() == kOnNoList) return;
    slab.prev.store(nullptr);
    slab.next.store(nullptr);
    slab.list.store(kOnNoList);
  }

  // adopt_slab (claim, take_ownership, drain), as SlabSource::try_adopt.
  bool try_adopt(unsigned t) {
    if (!adopt_slab(adoptable, kSlabIndex, &slab, &heaps[t])) return false;
    become_owner(t);
    return true;
  }

  // thread_exit (core/alloc/process.cc): off the heap's list, then abandon_or_release
  // -> SlabSource::abandon.
  void exit_owner(unsigned t) {
    RL_ASSERT(owns(t));
    list_remove();
    slab.drain_remote();
    RL_ASSERT(slab.used_count() > 0);  // a block stays live: never released
    stop_owning(t);
    const bool was_clear = abandon_slab(adoptable, kSlabIndex, &slab);
    RL_ASSERT(was_clear);
  }

  // small_free's owner check (core/alloc/fast_path.h), then
  // BasicRemoteFree::free_block as free_remote calls it.
  void free_block(unsigned t, unsigned id) {
    Block* b = &blocks[id];
    freed[id] = true;
    if (owns(t)) {
      RL_ASSERT(holder.load() == t);
      slab.push_local(b, tag_of(id));
      return;
    }
    const RemoteFreeOutcome r = BasicRemoteFree<Slab, Heap>::free_block(
        &heaps[t], &slab, b, tag_of(id), [this, t](Slab*) { return try_adopt(t); });
    RL_ASSERT(r != RemoteFreeOutcome::kFreeOfUnusedSlab);
    if (r == RemoteFreeOutcome::kAdopted) {
      slab.push_local(b, tag_of(id));
      list_push(kOnPartialList);
    }
  }

  void thread(unsigned t) {
    switch (t) {
      case kA:
        list_push(kOnFullList);  // every block live
        for (unsigned id : kFreedByA) free_block(t, id);
        exit_owner(t);
        break;
      case kB:
        for (unsigned id : kFreedByB) free_block(t, id);
        break;
      default:
        for (unsigned attempt = 0; attempt < kCAdoptAttempts; ++attempt) {
          if (try_adopt(t)) {
            list_push(kOnFullList);  // SlabSource::acquire: no free block yet
            free_block(t, kFreedByC);
            exit_owner(t);
            break;
          }
          P::pause();
        }
        break;
    }
  }

  void after() {
    // Who owns the slab now? Nobody if its adoptable bit is set.
    const bool abandoned = (adoptable.snapshot() >> kSlabIndex) & 1u;
    const unsigned owner_count = owners.load(MemoryOrder::relaxed);
    if (abandoned) {
      RL_ASSERT(owner_count == 0);
      RL_ASSERT(slab.state.load(MemoryOrder::relaxed) == kSlabAbandoned);
      RL_ASSERT(slab.owner.load(MemoryOrder::relaxed) == nullptr);
      RL_ASSERT(try_adopt(kFinal));
    } else {
      RL_ASSERT(owner_count != 0);  // neither owned nor adoptable: a lost slab
      RL_ASSERT(owner_count == 1);
      RL_ASSERT(slab.state.load(MemoryOrder::relaxed) == kSlabOwned);
      const unsigned t = holder.load();
      RL_ASSERT(t == kB);  // only B keeps an adopted slab
      RL_ASSERT(owns(t));
      slab.drain_remote();  // the owner's next refill
    }
    RL_ASSERT(adoptable.snapshot() == 0);

    // Every freed block on the free list exactly once, nothing else on it.
    unsigned on_list[kBlocks] = {};
    unsigned hops = 0;
    for (Block* b = slab.free.load(); b != nullptr; b = b->next.load()) {
      RL_ASSERT(hops < kBlocks);  // acyclic
      if (hops++ >= kBlocks) return;
      RL_ASSERT(b >= &blocks[0] && b < &blocks[kBlocks]);
      const unsigned id = static_cast<unsigned>(b - &blocks[0]);
      RL_ASSERT(b->free_tag.load() == tag_of(id));
      ++on_list[id];
    }
    RL_ASSERT(slab.remote.empty());
    unsigned live = 0;
    for (unsigned id = 0; id < kBlocks; ++id) {
      RL_ASSERT(on_list[id] == (freed[id] ? 1u : 0u));
      live += freed[id] ? 0 : 1;
    }
    RL_ASSERT(slab.used_count() == live);
    RL_ASSERT(live >= 1);
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::SlabBitmapRelaxedClaim;
  using hakmem::lockfree::SlabBitmapRelaxedRelease;
  return ModelRun("slab_adoption_model", 1000000)
      .clean<AdoptionModel<RelacyAtomics, SlabBitmapOrders>>(
          "slab adoption: owner frees+abandons, remote freer adopts or pushes, adopter "
          "adopts+abandons",
          3)
      .control<AdoptionModel<RelacyAtomics, SlabBitmapRelaxedRelease>>(
          "slab adoption NEGATIVE CONTROL: SlabBitmapOrders::release = relaxed",
          {rl::test_result_data_race})
      .control<AdoptionModel<RelacyAtomics, SlabBitmapRelaxedClaim>>(
          "slab adoption NEGATIVE CONTROL: SlabBitmapOrders::claim = relaxed",
          {rl::test_result_data_race})
      // Under the context-bound scheduler the first execution reported has
      // two owners at once; the random scheduler first finds a claim that
      // overwrites the abandoning owner's release, losing the slab.
      .control<AdoptionModel<SplitTestAndResetAtomics, SlabBitmapOrders>>(
          "slab adoption NEGATIVE CONTROL: claim's bit_test_and_reset as load + store",
          {rl::test_result_user_assert_failed, rl::test_result_data_race},
          ModelOptions::bounded(1))
      .control<AdoptionModel<SplitTestAndResetAtomics, SlabBitmapOrders>>(
          "slab adoption NEGATIVE CONTROL: claim's bit_test_and_reset as load + store",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .finish();
}
