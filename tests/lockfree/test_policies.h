// The atomics policies the lock-free tests run over.
//
// Normal builds test both production backends (Boost.Atomic, the shipped
// default, and std::atomic, which TSan builds ship). ThreadSanitizer builds
// test only std::atomic: TSan cannot see the inline
// assembly behind some Boost.Atomic operations and would report false races.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "lockfree/std_atomics.h"
#include "platform/sanitizer.h"
#if !HAKMEM_BUILT_WITH_TSAN
#include "lockfree/boost_atomics.h"
#endif

namespace hakmem::lockfree::testing {

#if HAKMEM_BUILT_WITH_TSAN
using Policies = ::testing::Types<StdAtomics>;
#else
using Policies = ::testing::Types<BoostAtomics, StdAtomics>;
#endif

struct PolicyName {
  template <class P>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<P, StdAtomics>) {
      return "StdAtomics";
    } else {
      return "BoostAtomics";
    }
  }
};

}  // namespace hakmem::lockfree::testing
