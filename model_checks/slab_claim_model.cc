// Relacy model of slab claim/release (invariant I2) on the shipped
// lockfree::SlabBitmap: three threads compete for two slots with claim_any(),
// claim(i) and release(i).
//
// A thread holding slot i writes the slot's plain metadata (rl::var "owner"
// and "uses", as a slab owner writes its slab's free list and counters) and
// reads it back after a scheduling point. Two holders at once are caught two
// ways: the relaxed atomic holder count per slot must go 0 -> 1 on every
// claim (an assertion), and the plain metadata accesses of two holders are
// unordered (a data race). release() must report that the bit was clear.
// At the end every bit is set again and the per-slot use counters add up to
// the number of successful claims.
//
// Negative controls: the same model over
//  - SlabBitmapOrders::claim = relaxed (a claim does not acquire the previous
//    holder's writes: data race);
//  - SlabBitmapOrders::release = relaxed (the release does not publish them:
//    data race);
//  - a policy whose bit_test_and_reset is a load then a store instead of one
//    atomic RMW (two threads claim the same slot, or a claim overwrites a
//    concurrent release: an assertion or a data race).
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
using lockfree::SplitTestAndResetAtomics;

constexpr unsigned kThreads = 3;
constexpr unsigned kSlots = 2;
constexpr uint32_t kAllFree = (1u << kSlots) - 1;

template <class P, class Orders>
struct ClaimModel : rl::test_suite<ClaimModel<P, Orders>, kThreads> {
  using Bitmap = SlabBitmap<P, uint32_t, Orders>;
  static constexpr int kNone = Bitmap::kNone;

  Bitmap bitmap{kAllFree};
  // Plain per-slot metadata, only touched by the slot's holder.
  typename P::template Var<unsigned> owner[kSlots];
  typename P::template Var<unsigned> uses[kSlots];
  // Number of current holders of each slot; must never exceed 1.
  typename P::template Atomic<unsigned> holders[kSlots];
  // Successful claims per thread (checker state, each entry written by one
  // thread and read in after()).
  unsigned claims[kThreads] = {};

  void hold(unsigned t, unsigned slot) {
    RL_ASSERT(slot < kSlots);
    if (slot >= kSlots) return;
    ++claims[t];
    const unsigned before = holders[slot].fetch_add(1, MemoryOrder::relaxed);
    RL_ASSERT(before == 0);  // I2: nobody else holds the slot
    owner[slot].store(t + 1);
    uses[slot].store(uses[slot].load() + 1);
    (void)holders[slot].load(MemoryOrder::relaxed);  // a scheduling point while holding
    RL_ASSERT(owner[slot].load() == t + 1);
    holders[slot].fetch_sub(1, MemoryOrder::relaxed);
    const bool was_clear = bitmap.release(slot);
    RL_ASSERT(was_clear);  // the bit was ours
  }

  void claim_any_and_hold(unsigned t) {
    const int slot = bitmap.claim_any();
    if (slot != kNone) hold(t, static_cast<unsigned>(slot));
  }

  void claim_and_hold(unsigned t, unsigned slot) {
    if (bitmap.claim(slot)) hold(t, slot);
  }

  void thread(unsigned t) {
    switch (t) {
      case 0:
        claim_any_and_hold(t);
        claim_any_and_hold(t);
        break;
      case 1:
        claim_and_hold(t, 0);
        claim_any_and_hold(t);
        break;
      default:
        claim_and_hold(t, 1);
        claim_and_hold(t, 0);
        claim_any_and_hold(t);
        break;
    }
  }

  void after() {
    RL_ASSERT(bitmap.snapshot() == kAllFree);
    unsigned total_claims = 0, total_uses = 0;
    for (unsigned t = 0; t < kThreads; ++t) total_claims += claims[t];
    for (unsigned s = 0; s < kSlots; ++s) {
      RL_ASSERT(holders[s].load(MemoryOrder::relaxed) == 0);
      total_uses += uses[s].load();
    }
    RL_ASSERT(total_uses == total_claims);
    RL_ASSERT(total_claims >= 2);  // two slots, and the first claims cannot all fail
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::SlabBitmapRelaxedClaim;
  using hakmem::lockfree::SlabBitmapRelaxedRelease;
  return ModelRun("slab_claim_model", 1000000)
      .clean<ClaimModel<RelacyAtomics, SlabBitmapOrders>>(
          "slab claim/release: 3 threads, 2 slots, claim_any/claim/release", 3)
      .control<ClaimModel<RelacyAtomics, SlabBitmapRelaxedClaim>>(
          "slab claim NEGATIVE CONTROL: SlabBitmapOrders::claim = relaxed",
          {rl::test_result_data_race})
      .control<ClaimModel<RelacyAtomics, SlabBitmapRelaxedRelease>>(
          "slab claim NEGATIVE CONTROL: SlabBitmapOrders::release = relaxed",
          {rl::test_result_data_race})
      .control<ClaimModel<SplitTestAndResetAtomics, SlabBitmapOrders>>(
          "slab claim NEGATIVE CONTROL: bit_test_and_reset as load + store (non-atomic RMW)",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .finish();
}
