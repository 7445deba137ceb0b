// SlabBitmap: a word of bits, each saying "this slot is free to be claimed".
//
// claim(i) clears bit i with one atomic RMW (Boost: `lock btr`) and succeeds
// only if the bit was set before, so two threads can never both claim the
// same slot. release(i) sets the bit with one atomic RMW. A slot's owner
// writes plain metadata while it holds the slot; release/claim pair as
// release/acquire so the next owner sees those writes.
//
// A run of slots (several adjacent bits, a `mask`) is claimed the same way
// with one atomic AND of ~mask (claim_run) and released with one OR
// (release_run).
#pragma once

#include <bit>
#include <cstdint>
#include <source_location>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

// Memory orders of SlabBitmap; a parameter only so model checks can show a
// weakened bitmap is caught.
struct SlabBitmapOrders {
  // A claim must see everything the previous owner wrote before releasing.
  static constexpr MemoryOrder claim = MemoryOrder::acquire;
  // A release publishes the owner's writes to the slot's next owner.
  static constexpr MemoryOrder release = MemoryOrder::release;
};

template <class P = DefaultAtomics, class Word = uint32_t, class Orders = SlabBitmapOrders>
class SlabBitmap {
 public:
  using Loc = std::source_location;
  static constexpr unsigned kBits = sizeof(Word) * 8;
  static constexpr int kNone = -1;

  constexpr SlabBitmap() = default;
  constexpr explicit SlabBitmap(Word initial) : bits_(initial) {}
  SlabBitmap(const SlabBitmap&) = delete;
  SlabBitmap& operator=(const SlabBitmap&) = delete;

  // Linearization point: the RMW that clears bit i. Succeeds iff the RMW's
  // old value had bit i set. Acquire (see SlabBitmapOrders::claim).
  bool claim(unsigned i, Loc loc = Loc::current()) {
    return bits_.bit_test_and_reset(i, Orders::claim, loc);
  }

  // Claims any free slot, lowest index first; returns its index or kNone.
  // Lock-free: claim(i) fails only if another thread claimed slot i after
  // our snapshot; then we take a fresh snapshot. The snapshot load is
  // relaxed because it only chooses a candidate; claim() synchronises.
  int claim_any(Loc loc = Loc::current()) {
    Word snapshot = bits_.load(MemoryOrder::relaxed, loc);
    while (snapshot != 0) {
      const unsigned i = static_cast<unsigned>(std::countr_zero(snapshot));
      if (claim(i, loc)) return static_cast<int>(i);
      snapshot = bits_.load(MemoryOrder::relaxed, loc);
      P::pause();
    }
    return kNone;
  }

  // Linearization point: the RMW that sets bit i (release, see
  // SlabBitmapOrders::release). Returns false if the bit was already set,
  // which means the caller released a slot it did not hold.
  bool release(unsigned i, Loc loc = Loc::current()) {
    return !bits_.bit_test_and_set(i, Orders::release, loc);
  }

  // Claims every slot of `mask` at once, or none.
  // Linearization point: the fetch_and that clears the mask's bits (acquire,
  // SlabBitmapOrders::claim: the claimer sees what the previous holders of
  // those slots wrote before releasing them). It succeeds iff the old value
  // had every bit of the mask. Otherwise the claim gives back the bits it
  // cleared that were set (the others belong to whoever holds them) with a
  // fetch_or. That fetch_or may be relaxed: it publishes nothing of its own,
  // and as an RMW it continues the release sequence of each release that
  // set those bits, so their next claimer still synchronises with the
  // releasing holder (C++20 [intro.races]: a release sequence continues
  // through every later RMW on the atomic).
  //
  // Between the two RMWs the bits look taken, so a claim of a run that
  // overlaps a partly free one may fail spuriously; two such claims may keep
  // each other failing. Callers that only ever claim the same fixed, disjoint
  // runs (a run's bits are then all set or all clear) never see that: of
  // several claims of a free run exactly one succeeds.
  bool claim_run(Word mask, Loc loc = Loc::current()) {
    const Word old = bits_.fetch_and(Word(~mask), Orders::claim, loc);
    if ((old & mask) == mask) return true;
    if ((old & mask) != 0) bits_.fetch_or(Word(old & mask), MemoryOrder::relaxed, loc);
    return false;
  }

  // Releases every slot of `mask` at once. Linearization point: the
  // fetch_or (release, SlabBitmapOrders::release: publishes the holder's
  // writes to the run's next claimer). Returns false if any bit of the mask
  // was already set, i.e. the caller released a slot it did not hold.
  bool release_run(Word mask, Loc loc = Loc::current()) {
    return (bits_.fetch_or(mask, Orders::release, loc) & mask) == 0;
  }

  // Sets every bit at once. Only for a bitmap no other thread can see yet
  // (its owner publishes it afterwards with a release operation).
  void initialize(Word bits, Loc loc = Loc::current()) {
    bits_.store(bits, MemoryOrder::relaxed, loc);
  }

  // A relaxed snapshot, for statistics and as a hint.
  Word snapshot(Loc loc = Loc::current()) const { return bits_.load(MemoryOrder::relaxed, loc); }

  bool test(unsigned i, Loc loc = Loc::current()) const {
    return (snapshot(loc) >> i) & 1u;
  }

 private:
  typename P::template Atomic<Word> bits_{0};
};

}  // namespace hakmem::lockfree
