// ThreadSanitizer-visible atomics policy: std::atomic.
//
// TSan instruments the __atomic builtins std::atomic uses but not the inline
// assembly behind some Boost.Atomic operations, so TSan builds
// run the same templates over this policy. The contract is
// documented in boost_atomics.h.
#pragma once

#include <atomic>
#include <source_location>

#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

struct StdAtomics {
  using Loc = std::source_location;

  static constexpr std::memory_order to_std(MemoryOrder mo) {
    switch (mo) {
      case MemoryOrder::relaxed:
        return std::memory_order_relaxed;
      case MemoryOrder::acquire:
        return std::memory_order_acquire;
      case MemoryOrder::release:
        return std::memory_order_release;
      case MemoryOrder::acq_rel:
        return std::memory_order_acq_rel;
      case MemoryOrder::seq_cst:
        return std::memory_order_seq_cst;
    }
    return std::memory_order_seq_cst;
  }

  template <class T>
  class Atomic {
   public:
    constexpr Atomic() noexcept : v_(T()) {}
    constexpr explicit Atomic(T init) noexcept : v_(init) {}
    Atomic(const Atomic&) = delete;
    Atomic& operator=(const Atomic&) = delete;

    T load(MemoryOrder mo, Loc = Loc::current()) const noexcept { return v_.load(to_std(mo)); }
    void store(T v, MemoryOrder mo, Loc = Loc::current()) noexcept { v_.store(v, to_std(mo)); }
    T exchange(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return v_.exchange(v, to_std(mo));
    }
    bool compare_exchange_weak(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                               Loc = Loc::current()) noexcept {
      return v_.compare_exchange_weak(expected, desired, to_std(success), to_std(failure));
    }
    bool compare_exchange_strong(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                                 Loc = Loc::current()) noexcept {
      return v_.compare_exchange_strong(expected, desired, to_std(success), to_std(failure));
    }
    T fetch_add(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return v_.fetch_add(v, to_std(mo));
    }
    T fetch_sub(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return v_.fetch_sub(v, to_std(mo));
    }
    T fetch_and(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return v_.fetch_and(v, to_std(mo));
    }
    T fetch_or(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return v_.fetch_or(v, to_std(mo));
    }
    bool bit_test_and_reset(unsigned bit, MemoryOrder mo, Loc = Loc::current()) noexcept {
      const T mask = T(1) << bit;
      return (v_.fetch_and(T(~mask), to_std(mo)) & mask) != 0;
    }
    bool bit_test_and_set(unsigned bit, MemoryOrder mo, Loc = Loc::current()) noexcept {
      const T mask = T(1) << bit;
      return (v_.fetch_or(mask, to_std(mo)) & mask) != 0;
    }

   private:
    std::atomic<T> v_;
  };

  template <class T>
  class Var {
   public:
    constexpr Var() noexcept : v_() {}
    constexpr explicit Var(T init) noexcept : v_(init) {}
    T load(Loc = Loc::current()) const noexcept { return v_; }
    void store(T v, Loc = Loc::current()) noexcept { v_ = v; }

   private:
    T v_;
  };

  static void pause() noexcept { __builtin_ia32_pause(); }
};

}  // namespace hakmem::lockfree
