// Model-checking atomics policy: Relacy Race Detector.
//
// Implements the atomics-policy contract documented in
// lockfree/boost_atomics.h over rl::atomic<T> (atomics) and rl::var<T>
// (plain shared fields, so Relacy reports data races on them). The lock-free
// templates in lockfree/ instantiated with this policy are the very code that
// ships, run under Relacy's scheduler and memory model.
//
// Include order: relacy/relacy.hpp #defines new, delete, malloc, free,
// assert and errno. Include every standard, Boost and lockfree/ header a
// model needs BEFORE this header, and this header last.
//
// Only relacy/relacy.hpp is used: relacy/relacy_std.hpp does not compile
// against libstdc++ 12.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <source_location>
#include <sstream>
#include <string>

#include "lockfree/memory_order.h"

#include <relacy/relacy.hpp>

// relacy.hpp turns `delete` into its tracking allocator, which also rewrites
// "= delete"; the policy's own definitions use the real keyword.
#pragma push_macro("delete")
#undef delete

namespace hakmem::lockfree {

struct RelacyAtomics {
  using Loc = std::source_location;

  static rl::debug_info info(const Loc& loc) noexcept {
    return rl::debug_info(loc.function_name(), loc.file_name(), loc.line());
  }

  static rl::memory_order to_rl(MemoryOrder mo) noexcept {
    switch (mo) {
      case MemoryOrder::relaxed:
        return rl::mo_relaxed;
      case MemoryOrder::acquire:
        return rl::mo_acquire;
      case MemoryOrder::release:
        return rl::mo_release;
      case MemoryOrder::acq_rel:
        return rl::mo_acq_rel;
      case MemoryOrder::seq_cst:
        return rl::mo_seq_cst;
    }
    return rl::mo_seq_cst;
  }

  // How a compare-exchange's (success, failure) orders are given to Relacy.
  //
  // Relacy follows the C++11 rule that the failure order may not be stronger
  // than the success order, so it silently ignores (for example) an acquire
  // failure order paired with a release or relaxed success order, which is
  // valid since C++17 and which ChunkList uses. Such a pair is modelled
  // exactly on success (release / relaxed RMW) and, on failure, as a relaxed
  // failed load followed by an acquire fence: the fence makes the failed load
  // synchronise with the release store it read, which is what an acquire
  // failure order means. (The fence also gives acquire semantics to earlier
  // relaxed loads of the same thread; no template in lockfree/ has a relaxed
  // load of a release-published value before such a CAS.) A seq_cst failure
  // order with a weaker success order strengthens the success order to
  // seq_cst instead.
  struct CasOrders {
    rl::memory_order success;
    rl::memory_order failure;
    bool acquire_fence_on_failure;
  };

  static CasOrders cas_orders(MemoryOrder success, MemoryOrder failure) noexcept {
    if (failure == MemoryOrder::release || failure == MemoryOrder::acq_rel) {
      // Not a valid failure order in C++ either.
      std::fputs("RelacyAtomics: invalid compare_exchange failure order\n", stderr);
      std::abort();
    }
    if (failure == MemoryOrder::seq_cst) {
      return {rl::mo_seq_cst, rl::mo_seq_cst, false};
    }
    switch (success) {
      case MemoryOrder::relaxed:
      case MemoryOrder::release:
        return {to_rl(success), rl::mo_relaxed, failure == MemoryOrder::acquire};
      case MemoryOrder::acquire:
      case MemoryOrder::acq_rel:
      case MemoryOrder::seq_cst:
        return {to_rl(success), to_rl(failure), false};
    }
    return {rl::mo_seq_cst, rl::mo_seq_cst, false};
  }

  template <class T>
  class Atomic {
   public:
    // Relacy atomics start uninitialised (a load before the first store is
    // reported), so the constructors store the initial value, like the
    // initialisation of a std::atomic.
    Atomic(Loc loc = Loc::current()) { v_.store(T(), rl::mo_relaxed, info(loc)); }
    explicit Atomic(T init, Loc loc = Loc::current()) { v_.store(init, rl::mo_relaxed, info(loc)); }
    Atomic(const Atomic&) = delete;
    Atomic& operator=(const Atomic&) = delete;

    T load(MemoryOrder mo, Loc loc = Loc::current()) const {
      return v_.load(to_rl(mo), info(loc));
    }
    void store(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      v_.store(v, to_rl(mo), info(loc));
    }
    T exchange(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      return v_.exchange(v, to_rl(mo), info(loc));
    }
    bool compare_exchange_weak(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                               Loc loc = Loc::current()) {
      return cas(rl::bool_t<true>(), expected, desired, success, failure, loc);
    }
    bool compare_exchange_strong(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                                 Loc loc = Loc::current()) {
      return cas(rl::bool_t<false>(), expected, desired, success, failure, loc);
    }
    T fetch_add(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      return v_.fetch_add(v, to_rl(mo), info(loc));
    }
    T fetch_sub(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      return v_.fetch_sub(v, to_rl(mo), info(loc));
    }
    T fetch_and(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      return v_.fetch_and(v, to_rl(mo), info(loc));
    }
    T fetch_or(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      return v_.fetch_or(v, to_rl(mo), info(loc));
    }
    // One atomic RMW each, like Boost's `lock btr` / `lock bts`.
    bool bit_test_and_reset(unsigned bit, MemoryOrder mo, Loc loc = Loc::current()) {
      const T mask = T(T(1) << bit);
      return (v_.fetch_and(T(~mask), to_rl(mo), info(loc)) & mask) != 0;
    }
    bool bit_test_and_set(unsigned bit, MemoryOrder mo, Loc loc = Loc::current()) {
      const T mask = T(T(1) << bit);
      return (v_.fetch_or(mask, to_rl(mo), info(loc)) & mask) != 0;
    }

   private:
    template <bool kWeak>
    bool cas(rl::bool_t<kWeak> weak, T& expected, T desired, MemoryOrder success,
             MemoryOrder failure, const Loc& loc) {
      const CasOrders o = cas_orders(success, failure);
      const rl::debug_info di = info(loc);
      const bool ok = v_.compare_exchange(weak, expected, desired, o.success, o.failure, di);
      if (!ok && o.acquire_fence_on_failure) rl::atomic_thread_fence(rl::mo_acquire, di);
      return ok;
    }

    rl::atomic<T> v_;
  };

  template <class T>
  class Var {
   public:
    // rl::var<T>(value) records the initialising store for the race detector.
    Var() : v_(T()) {}
    explicit Var(T init) : v_(init) {}
    Var(const Var&) = delete;
    Var& operator=(const Var&) = delete;

    T load(Loc loc = Loc::current()) const { return v_(info(loc)).load(); }
    void store(T v, Loc loc = Loc::current()) { v_(info(loc)).store(v); }

   private:
    rl::var<T> v_;
  };

  // A spin/retry loop yields to Relacy's scheduler: otherwise Relacy may keep
  // running the spinning thread on stale values and report a livelock.
  static void pause(Loc loc = Loc::current()) { rl::yield(1, info(loc)); }
};

}  // namespace hakmem::lockfree

#pragma pop_macro("delete")
