// Relacy model of run claim/release on the shipped lockfree::SlabBitmap
// (claim_run / release_run), as medium blocks use it (core/meta/chunk.h: a
// run of k slabs is claimed with one AND of its k-bit mask on the chunk's
// free bitmap and released with one OR). Invariant I2 for runs: a slot is
// held by at most one thread, and a run is claimed whole or not at all.
//
// Four slots. Thread 0 claims the fixed runs {0,1} and {2,3}, as the
// allocator does. Thread 1 claims the overlapping run {1,2}, so claims fail
// on partly free runs and give back what they cleared (claim_run's relaxed
// restoring OR): the next claimer of a restored bit must still see the
// writes of the slot's previous holder. Thread 2 claims slot 3 alone
// (claim/release, a run of one) and then the run {2,3}. A holder writes and
// re-reads each slot's plain metadata (rl::var) and bumps a relaxed holder
// count that must go 0 -> 1. At the end every bit is set, no slot is held
// and the per-slot use counts add up to the slots claimed.
//
// Negative controls, each of which Relacy must report:
//  - SlabBitmapOrders::claim = relaxed: a claim does not acquire the previous
//    holder's writes (data race);
//  - SlabBitmapOrders::release = relaxed: release_run does not publish them
//    (data race);
//  - SplitFetchAndAtomics: claim_run's AND as a load + store (two holders of
//    a run, or a release overwritten: an assertion or a data race).
#include <cstdint>

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
using lockfree::SplitFetchAndAtomics;

constexpr unsigned kThreads = 3;
constexpr unsigned kSlots = 4;
constexpr uint32_t kAllFree = (1u << kSlots) - 1;

template <class P, class Orders>
struct RunModel : rl::test_suite<RunModel<P, Orders>, kThreads> {
  using Bitmap = SlabBitmap<P, uint32_t, Orders>;

  Bitmap bitmap{kAllFree};
  typename P::template Var<unsigned> owner[kSlots];
  typename P::template Var<unsigned> uses[kSlots];
  typename P::template Atomic<unsigned> holders[kSlots];
  unsigned claimed_slots[kThreads] = {};

  void take(unsigned t, uint32_t mask) {
    for (unsigned s = 0; s < kSlots; ++s) {
      if (!((mask >> s) & 1)) continue;
      ++claimed_slots[t];
      const unsigned before = holders[s].fetch_add(1, MemoryOrder::relaxed);
      RL_ASSERT(before == 0);  // I2: nobody else holds the slot
      owner[s].store(t + 1);
      uses[s].store(uses[s].load() + 1);
    }
  }

  void give_back(unsigned t, uint32_t mask) {
    for (unsigned s = 0; s < kSlots; ++s) {
      if (!((mask >> s) & 1)) continue;
      RL_ASSERT(owner[s].load() == t + 1);
      holders[s].fetch_sub(1, MemoryOrder::relaxed);
    }
  }

  void run(unsigned t, uint32_t mask) {
    if (!bitmap.claim_run(mask)) return;
    take(t, mask);
    (void)holders[0].load(MemoryOrder::relaxed);  // a scheduling point while holding
    give_back(t, mask);
    const bool was_clear = bitmap.release_run(mask);
    RL_ASSERT(was_clear);  // every bit of the run was ours
  }

  void single(unsigned t, unsigned slot) {
    if (!bitmap.claim(slot)) return;
    take(t, 1u << slot);
    give_back(t, 1u << slot);
    RL_ASSERT(bitmap.release(slot));
  }

  void thread(unsigned t) {
    switch (t) {
      case 0:
        run(t, 0b0011);
        run(t, 0b1100);
        break;
      case 1:
        run(t, 0b0110);
        run(t, 0b0011);
        break;
      default:
        single(t, 3);
        run(t, 0b1100);
        break;
    }
  }

  void after() {
    RL_ASSERT(bitmap.snapshot() == kAllFree);
    unsigned total_claimed = 0, total_uses = 0;
    for (unsigned t = 0; t < kThreads; ++t) total_claimed += claimed_slots[t];
    for (unsigned s = 0; s < kSlots; ++s) {
      RL_ASSERT(holders[s].load(MemoryOrder::relaxed) == 0);
      total_uses += uses[s].load();
    }
    RL_ASSERT(total_uses == total_claimed);
    RL_ASSERT(total_claimed >= 2);  // the first claim of some thread succeeds
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::SlabBitmapRelaxedClaim;
  using hakmem::lockfree::SlabBitmapRelaxedRelease;
  return ModelRun("run_claim_model", 1000000)
      .clean<RunModel<RelacyAtomics, SlabBitmapOrders>>(
          "run claim/release: 3 threads, 4 slots, runs {0,1} {2,3} {1,2} and slot 3", 3)
      .control<RunModel<RelacyAtomics, SlabBitmapRelaxedClaim>>(
          "run claim NEGATIVE CONTROL: SlabBitmapOrders::claim = relaxed",
          {rl::test_result_data_race})
      .control<RunModel<RelacyAtomics, SlabBitmapRelaxedRelease>>(
          "run claim NEGATIVE CONTROL: SlabBitmapOrders::release = relaxed",
          {rl::test_result_data_race})
      .control<RunModel<SplitFetchAndAtomics, SlabBitmapOrders>>(
          "run claim NEGATIVE CONTROL: claim_run's fetch_and as load + store (non-atomic RMW)",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .finish();
}
