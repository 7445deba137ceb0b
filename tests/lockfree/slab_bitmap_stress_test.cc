// Multithreaded stress tests of lockfree::SlabBitmap (invariant I2).
//
// Threads claim and release slots with claim_any() and claim(i). A holder
// checks it is alone (a per-slot atomic holder count must go 0 -> 1), writes
// the slot's plain owner field and bumps its plain use counter, reads the
// owner back, and releases (which must find the bit clear). Two holders at
// once show up as a holder count of 2, a foreign owner, lost counter
// increments (the final per-slot use counts must add up to the successful
// claims exactly) and, under TSan, as a data race on the plain fields.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "lockfree/slab_bitmap.h"
#include "tests/lockfree/stress_util.h"
#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

using testing::Rng;
using testing::run_threads;

constexpr unsigned kThreads = 8;

// Per-slot state. The plain fields are only touched by the slot's holder.
struct alignas(64) Slot {
  std::atomic<unsigned> holders{0};
  unsigned owner = 0;
  uint64_t uses = 0;
};

struct Tally {
  uint64_t attempts = 0;
  uint64_t claims = 0;
  uint64_t violations = 0;
};

template <class P, class Word>
class Harness {
 public:
  using Bitmap = SlabBitmap<P, Word>;

  Harness(unsigned slots) : bitmap_(all_free(slots)), slots_(slots) {}

  static Word all_free(unsigned slots) {
    return slots >= Bitmap::kBits ? Word(~Word(0)) : Word((Word(1) << slots) - 1);
  }

  // Holds slot i briefly: the ownership checks.
  void hold(unsigned i, unsigned me, Tally& tally) {
    Slot& s = slots_[i];
    ++tally.claims;
    if (s.holders.fetch_add(1, std::memory_order_relaxed) != 0) ++tally.violations;
    s.owner = me;
    ++s.uses;
    // The acquire load also forces the owner to be re-read from memory.
    if (s.holders.load(std::memory_order_acquire) != 1) ++tally.violations;
    if (s.owner != me) ++tally.violations;
    s.holders.fetch_sub(1, std::memory_order_relaxed);
  }

  void release(unsigned i, Tally& tally) {
    if (!bitmap_.release(i)) ++tally.violations;  // the bit was not clear
  }

  Bitmap& bitmap() { return bitmap_; }
  std::vector<Slot>& slots() { return slots_; }

 private:
  Bitmap bitmap_;
  std::vector<Slot> slots_;
};

template <class P>
class SlabBitmapStress : public ::testing::Test {};

TYPED_TEST_SUITE(SlabBitmapStress, testing::Policies, testing::PolicyName);

// 8 threads fight over 4 slots; 2^18 x kStressRounds claim attempts per
// thread, each successful one followed by a release (>= 4M bitmap operations
// in total, >= 8M outside TSan).
TYPED_TEST(SlabBitmapStress, ContendedSlotsNeverHaveTwoOwners) {
  constexpr unsigned kSlots = 4;
  constexpr uint64_t kAttemptsPerThread = (uint64_t{1} << 18) * testing::kStressRounds;
  Harness<TypeParam, uint32_t> h(kSlots);
  std::vector<Tally> tallies(kThreads);

  run_threads(kThreads, [&](unsigned t) {
    Tally tally;
    Rng rng(t);
    for (uint64_t k = 0; k < kAttemptsPerThread; ++k) {
      ++tally.attempts;
      int slot;
      if (rng.below(2) == 0) {
        slot = h.bitmap().claim_any();
      } else {
        const unsigned i = rng.below(kSlots);
        slot = h.bitmap().claim(i) ? static_cast<int>(i) : -1;
      }
      if (slot < 0) continue;
      h.hold(static_cast<unsigned>(slot), t + 1, tally);
      h.release(static_cast<unsigned>(slot), tally);
    }
    tallies[t] = tally;
  });

  uint64_t attempts = 0, claims = 0, uses = 0;
  for (const Tally& t : tallies) {
    EXPECT_EQ(t.violations, 0u);
    attempts += t.attempts;
    claims += t.claims;
  }
  for (const Slot& s : h.slots()) {
    EXPECT_EQ(s.holders.load(), 0u);
    uses += s.uses;
  }
  EXPECT_EQ(attempts, kThreads * kAttemptsPerThread);
  EXPECT_EQ(uses, claims);  // no increment lost to a concurrent holder
  EXPECT_GT(claims, attempts / 8);  // the test really claimed slots
  EXPECT_EQ(h.bitmap().snapshot(), h.all_free(kSlots));
}

// 8 threads each hold up to 6 of 64 slots at a time and release them in a
// different order than they claimed them: claim_any() over a full 64-bit
// word while other bits come and go.
TYPED_TEST(SlabBitmapStress, ManyHeldSlotsFullWord) {
  constexpr unsigned kSlots = 64;
  constexpr unsigned kMaxHeld = 6;
  // Each round claims 1..6 slots and releases them.
  constexpr uint64_t kRoundsPerThread = (uint64_t{1} << 15) * testing::kStressRounds;
  Harness<TypeParam, uint64_t> h(kSlots);
  std::vector<Tally> tallies(kThreads);

  run_threads(kThreads, [&](unsigned t) {
    Tally tally;
    Rng rng(100 + t);
    unsigned held[kMaxHeld];
    for (uint64_t r = 0; r < kRoundsPerThread; ++r) {
      const unsigned want = 1 + rng.below(kMaxHeld);
      unsigned n = 0;
      for (unsigned k = 0; k < want; ++k) {
        ++tally.attempts;
        const int slot = h.bitmap().claim_any();
        if (slot < 0) continue;
        h.hold(static_cast<unsigned>(slot), t + 1, tally);
        held[n++] = static_cast<unsigned>(slot);
      }
      // Release newest-first on odd rounds, oldest-first on even ones.
      for (unsigned k = 0; k < n; ++k) {
        h.release(held[r % 2 ? n - 1 - k : k], tally);
      }
    }
    tallies[t] = tally;
  });

  uint64_t attempts = 0, claims = 0, uses = 0;
  for (const Tally& t : tallies) {
    EXPECT_EQ(t.violations, 0u);
    attempts += t.attempts;
    claims += t.claims;
  }
  for (const Slot& s : h.slots()) uses += s.uses;
  EXPECT_EQ(uses, claims);
  EXPECT_EQ(claims, attempts);  // 8 x 6 < 64: claim_any never runs dry
  EXPECT_GE(claims * 2, uint64_t{1000000});  // claims + releases
  EXPECT_EQ(h.bitmap().snapshot(), ~uint64_t{0});
}

}  // namespace
}  // namespace hakmem::lockfree
