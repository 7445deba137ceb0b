// Deliberately broken atomics policies for the models' negative controls.
//
// Each is RelacyAtomics with one operation replaced by a non-atomic
// read-modify-write: a load followed by a separate store, so another thread
// can act between the two. Instantiating a shipped template with one of these
// must make Relacy report the model; if it does not, the model cannot detect
// that class of bug and proves nothing about it.
#pragma once

#include <type_traits>

#include "model_checks/relacy_atomics.h"

namespace hakmem::lockfree {

namespace broken_detail {

constexpr bool acquires(MemoryOrder mo) {
  return mo == MemoryOrder::acquire || mo == MemoryOrder::acq_rel || mo == MemoryOrder::seq_cst;
}
constexpr bool releases(MemoryOrder mo) {
  return mo == MemoryOrder::release || mo == MemoryOrder::acq_rel || mo == MemoryOrder::seq_cst;
}
// The orders of the load and the store a split RMW of order `mo` is made of.
constexpr MemoryOrder load_part(MemoryOrder mo) {
  return acquires(mo) ? MemoryOrder::acquire : MemoryOrder::relaxed;
}
constexpr MemoryOrder store_part(MemoryOrder mo) {
  return releases(mo) ? MemoryOrder::release : MemoryOrder::relaxed;
}

}  // namespace broken_detail

// compare_exchange_{weak,strong} done as load, compare, store: "a plain store
// where a CAS belongs". Two threads can both see the expected value and both
// "succeed", so one update is lost.
struct SplitCasAtomics : RelacyAtomics {
  template <class T>
  class Atomic : public RelacyAtomics::Atomic<T> {
    using Base = RelacyAtomics::Atomic<T>;

   public:
    using Base::Base;

    bool compare_exchange_weak(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                               Loc loc = Loc::current()) {
      return split_cas(expected, desired, success, failure, loc);
    }
    bool compare_exchange_strong(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                                 Loc loc = Loc::current()) {
      return split_cas(expected, desired, success, failure, loc);
    }

   private:
    bool split_cas(T& expected, T desired, MemoryOrder success, MemoryOrder failure,
                   const Loc& loc) {
      using namespace broken_detail;
      (void)failure;
      // The load acquires whatever the orders say, so that the only defect
      // is atomicity (a relaxed load would also break release sequences,
      // and Relacy would report that as a data race instead).
      const T current = this->load(MemoryOrder::acquire, loc);
      if (current != expected) {
        expected = current;
        return false;
      }
      this->store(desired, store_part(success), loc);
      return true;
    }
  };
};

// bit_test_and_reset done as a load then a store of the modified word
// instead of one `lock btr`: two claimers can both see the bit set and both
// clear it, and a concurrent release can be overwritten.
struct SplitTestAndResetAtomics : RelacyAtomics {
  template <class T>
  class Atomic : public RelacyAtomics::Atomic<T> {
    using Base = RelacyAtomics::Atomic<T>;

   public:
    using Base::Base;

    bool bit_test_and_reset(unsigned bit, MemoryOrder mo, Loc loc = Loc::current()) {
      using namespace broken_detail;
      const T mask = T(T(1) << bit);
      const T old = this->load(load_part(mo), loc);
      this->store(T(old & ~mask), store_part(mo), loc);
      return (old & mask) != 0;
    }
  };
};

// fetch_and done as a load then a store of the masked word instead of one
// atomic AND (SlabBitmap::claim_run's `lock and`): two claimers of a run can
// both see every bit set and both claim it, and a concurrent release of
// another run can be overwritten.
struct SplitFetchAndAtomics : RelacyAtomics {
  template <class T>
  class Atomic : public RelacyAtomics::Atomic<T> {
    using Base = RelacyAtomics::Atomic<T>;

   public:
    using Base::Base;

    T fetch_and(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      using namespace broken_detail;
      const T old = this->load(load_part(mo), loc);
      this->store(T(old & v), store_part(mo), loc);
      return old;
    }
  };
};

// exchange of an integer (a flag such as NotifyQueue's notify_queued) done
// as a load then a store: two threads can both read "clear" and both think
// they set the flag. Pointer exchanges (RemoteFreeList::take_all) stay
// atomic, so that only the flag protocol is broken.
struct SplitFlagExchangeAtomics : RelacyAtomics {
  template <class T>
  class Atomic : public RelacyAtomics::Atomic<T> {
    using Base = RelacyAtomics::Atomic<T>;

   public:
    using Base::Base;

    T exchange(T v, MemoryOrder mo, Loc loc = Loc::current()) {
      using namespace broken_detail;
      if constexpr (std::is_pointer_v<T>) {
        return Base::exchange(v, mo, loc);
      } else {
        const T old = this->load(load_part(mo), loc);
        this->store(v, store_part(mo), loc);
        return old;
      }
    }
  };
};

}  // namespace hakmem::lockfree
