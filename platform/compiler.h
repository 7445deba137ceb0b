// Branch hints and inlining, named once.
#pragma once

#define HAKMEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAKMEM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAKMEM_ALWAYS_INLINE __attribute__((always_inline)) inline
