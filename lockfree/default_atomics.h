// The atomics policy the shipped allocator is built with: Boost.Atomic, or
// std::atomic in ThreadSanitizer builds (TSan cannot see inline assembly).
#pragma once

#if defined(HAKMEM_TSAN) && HAKMEM_TSAN
#include "lockfree/std_atomics.h"
namespace hakmem::lockfree {
using DefaultAtomics = StdAtomics;
}
#else
#include "lockfree/boost_atomics.h"
namespace hakmem::lockfree {
using DefaultAtomics = BoostAtomics;
}
#endif
