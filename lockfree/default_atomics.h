// The atomics policy the shipped allocator is built with: Boost.Atomic, or
// std::atomic in ThreadSanitizer builds (TSan cannot see inline assembly).
// A TSan build is recognised from the compiler (platform/sanitizer.h), so a
// program built with -fsanitize=thread gets the policy TSan understands
// whatever its build flags say otherwise.
#pragma once

#include "platform/sanitizer.h"

#if HAKMEM_BUILT_WITH_TSAN
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
