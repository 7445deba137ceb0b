// DecaySchedule: when memory that has sat unused for a decay time goes back
// to the OS, and which thread does it.
//
// Any thread on a slow path (a slab acquire or release, a background purger)
// passes the current time to claim_pass(). Once per interval (a quarter of
// the decay time) exactly one caller gets true and runs a purge pass, which
// returns what was released at least decay_ns ago (expired()). Memory
// released at time t is therefore returned between t + decay and
// t + decay + interval, provided some thread calls claim_pass then.
//
// Only the election is here; what a pass purges and how it owns what it
// purges (slab_source.cc: it claims each free slab's bitmap bits) is the
// caller's. The template is over the atomics policy like the other
// lock-free parts.
#pragma once

#include <cstdint>
#include <source_location>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

template <class P = DefaultAtomics>
class BasicDecaySchedule {
 public:
  using Loc = std::source_location;
  static constexpr uint64_t kIntervalDivisor = 4;

  constexpr BasicDecaySchedule() = default;
  BasicDecaySchedule(const BasicDecaySchedule&) = delete;
  BasicDecaySchedule& operator=(const BasicDecaySchedule&) = delete;

  // Before any other thread uses the schedule. 0 disables it.
  void configure(uint64_t decay_ns) noexcept {
    decay_ns_ = decay_ns;
    next_.store(0, MemoryOrder::relaxed);
  }
  bool enabled() const noexcept { return decay_ns_ != 0; }
  uint64_t decay_ns() const noexcept { return decay_ns_; }
  uint64_t interval_ns() const noexcept {
    const uint64_t i = decay_ns_ / kIntervalDivisor;
    return i > 0 ? i : 1;
  }

  // True for exactly one caller per interval: that caller runs a pass now.
  // Cheap when no pass is due: one relaxed load and a compare.
  // Linearization point: the successful CAS on next_, which moves the next
  // pass one interval past `now`. Relaxed in both orders: the winner gains
  // only the right to run a pass; a pass synchronises with the memory it
  // purges through that memory's own claims, and two passes at once (a
  // caller whose clock lags) would still be correct, only wasteful.
  bool claim_pass(uint64_t now_ns, Loc loc = Loc::current()) noexcept {
    if (!enabled()) return false;
    uint64_t next = next_.load(MemoryOrder::relaxed, loc);
    if (now_ns < next) return false;
    return next_.compare_exchange_strong(next, now_ns + interval_ns(), MemoryOrder::relaxed,
                                         MemoryOrder::relaxed, loc);
  }

  // Whether memory released at `stamp_ns` has decayed by `now_ns`.
  bool expired(uint64_t stamp_ns, uint64_t now_ns) const noexcept {
    return now_ns >= stamp_ns && now_ns - stamp_ns >= decay_ns_;
  }

  // The time of the next pass (statistics, tests).
  uint64_t next_pass_ns(Loc loc = Loc::current()) const noexcept {
    return next_.load(MemoryOrder::relaxed, loc);
  }

 private:
  uint64_t decay_ns_ = 0;
  typename P::template Atomic<uint64_t> next_{0};
};

using DecaySchedule = BasicDecaySchedule<>;

}  // namespace hakmem::lockfree
