// Production atomics policy: Boost.Atomic.
//
// An atomics policy P provides
//   P::Atomic<T>  load/store/exchange/compare_exchange_{weak,strong}/
//                 fetch_{add,sub,and,or}/bit_test_and_{set,reset}
//   P::Var<T>     a plain (non-atomic) shared field: load()/store()
//   P::pause()    a spin-wait hint inside a retry loop
// Every member takes a trailing std::source_location so the Relacy policy can
// report where an access happened; the other policies ignore it and the
// compiler removes it.
//
// Boost.Atomic is used because bit_test_and_reset/bit_test_and_set compile to
// a single `lock btr`/`lock bts`, which is what slab claiming wants.
#pragma once

#include <boost/atomic/atomic_ref.hpp>

#include <source_location>

#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

struct BoostAtomics {
  using Loc = std::source_location;

  static constexpr boost::memory_order to_boost(MemoryOrder mo) {
    switch (mo) {
      case MemoryOrder::relaxed:
        return boost::memory_order_relaxed;
      case MemoryOrder::acquire:
        return boost::memory_order_acquire;
      case MemoryOrder::release:
        return boost::memory_order_release;
      case MemoryOrder::acq_rel:
        return boost::memory_order_acq_rel;
      case MemoryOrder::seq_cst:
        return boost::memory_order_seq_cst;
    }
    return boost::memory_order_seq_cst;
  }

  // Boost.Atomic operations applied through boost::atomic_ref to a plain,
  // suitably aligned member. Unlike boost::atomic<T*> (whose constructor is
  // not constexpr in Boost 1.74) this keeps every Atomic constant-
  // initialisable, which hakmem's static state needs: an LD_PRELOADed
  // allocator is called before any dynamic initialiser runs.
  template <class T>
  class Atomic {
    using Ref = boost::atomic_ref<T>;

   public:
    constexpr Atomic() noexcept : v_() {}
    constexpr explicit Atomic(T init) noexcept : v_(init) {}
    Atomic(const Atomic&) = delete;
    Atomic& operator=(const Atomic&) = delete;

    T load(MemoryOrder mo, Loc = Loc::current()) const noexcept { return ref().load(to_boost(mo)); }
    void store(T v, MemoryOrder mo, Loc = Loc::current()) noexcept { ref().store(v, to_boost(mo)); }
    T exchange(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().exchange(v, to_boost(mo));
    }
    bool compare_exchange_weak(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                               Loc = Loc::current()) noexcept {
      return ref().compare_exchange_weak(expected, desired, to_boost(success), to_boost(failure));
    }
    bool compare_exchange_strong(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                                 Loc = Loc::current()) noexcept {
      return ref().compare_exchange_strong(expected, desired, to_boost(success), to_boost(failure));
    }
    T fetch_add(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().fetch_add(v, to_boost(mo));
    }
    T fetch_sub(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().fetch_sub(v, to_boost(mo));
    }
    T fetch_and(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().fetch_and(v, to_boost(mo));
    }
    T fetch_or(T v, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().fetch_or(v, to_boost(mo));
    }
    // Returns the bit's previous value; one `lock btr`.
    bool bit_test_and_reset(unsigned bit, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().bit_test_and_reset(bit, to_boost(mo));
    }
    // Returns the bit's previous value; one `lock bts`.
    bool bit_test_and_set(unsigned bit, MemoryOrder mo, Loc = Loc::current()) noexcept {
      return ref().bit_test_and_set(bit, to_boost(mo));
    }

   private:
    Ref ref() const noexcept { return Ref(const_cast<T&>(v_)); }
    alignas(Ref::required_alignment) T v_;
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
