// Sanitizers: which one this translation unit is compiled with, and which
// sanitizer runtime, if any, the process holds.
//
// Both matter to an allocator. A sanitizer that brings its own allocator
// (ASan, TSan, MSan, HWASan) must serve malloc and new itself, or it cannot
// see the program's heap; so when hakmem is compiled with one, it does not
// define malloc and new at all, and when an uninstrumented hakmem is
// preloaded into an instrumented program, its malloc and new hand every
// request to the sanitizer (api/malloc_overrides.cc). ThreadSanitizer also
// cannot see Boost.Atomic's inline assembly, so TSan builds use std::atomic
// (lockfree/default_atomics.h).
#pragma once

#include <cstddef>

#if defined(__has_feature)
#define HAKMEM_HAS_FEATURE(x) __has_feature(x)
#else
#define HAKMEM_HAS_FEATURE(x) 0
#endif

#if defined(__SANITIZE_THREAD__) || HAKMEM_HAS_FEATURE(thread_sanitizer)
#define HAKMEM_BUILT_WITH_TSAN 1
#else
#define HAKMEM_BUILT_WITH_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__) || HAKMEM_HAS_FEATURE(address_sanitizer)
#define HAKMEM_BUILT_WITH_ASAN 1
#else
#define HAKMEM_BUILT_WITH_ASAN 0
#endif

#if defined(__SANITIZE_HWADDRESS__) || HAKMEM_HAS_FEATURE(hwaddress_sanitizer)
#define HAKMEM_BUILT_WITH_HWASAN 1
#else
#define HAKMEM_BUILT_WITH_HWASAN 0
#endif

#if HAKMEM_HAS_FEATURE(memory_sanitizer)
#define HAKMEM_BUILT_WITH_MSAN 1
#else
#define HAKMEM_BUILT_WITH_MSAN 0
#endif

// Compiled with a sanitizer whose allocator must serve malloc and new.
#define HAKMEM_BUILT_WITH_SANITIZER_ALLOCATOR \
  (HAKMEM_BUILT_WITH_TSAN || HAKMEM_BUILT_WITH_ASAN || HAKMEM_BUILT_WITH_HWASAN || HAKMEM_BUILT_WITH_MSAN)

namespace hakmem::platform {

// The sanitizer this translation unit is compiled with, or null.
inline constexpr const char* kBuiltWithSanitizer = HAKMEM_BUILT_WITH_TSAN     ? "ThreadSanitizer"
                                                   : HAKMEM_BUILT_WITH_ASAN   ? "AddressSanitizer"
                                                   : HAKMEM_BUILT_WITH_HWASAN ? "HWAddressSanitizer"
                                                   : HAKMEM_BUILT_WITH_MSAN   ? "MemorySanitizer"
                                                                              : nullptr;

}  // namespace hakmem::platform

// Every sanitizer runtime defines its init function; a weak reference is
// null unless one is in the process (linked into the executable, or a shared
// runtime such as gcc's libasan.so). No call, no dlsym, no allocation.
extern "C" {
void __asan_init() __attribute__((weak));
void __tsan_init() __attribute__((weak));
void __msan_init() __attribute__((weak));
void __hwasan_init() __attribute__((weak));
}

namespace hakmem::platform {

// The sanitizer whose runtime is in this process, or null.
inline const char* sanitizer_runtime_in_process() noexcept {
  if (&__tsan_init != nullptr) return "ThreadSanitizer";
  if (&__asan_init != nullptr) return "AddressSanitizer";
  if (&__hwasan_init != nullptr) return "HWAddressSanitizer";
  if (&__msan_init != nullptr) return "MemorySanitizer";
  return nullptr;
}

}  // namespace hakmem::platform

// The sanitizer runtimes' own allocation entry points (gcc 12's and clang
// 14's runtimes define them beside malloc, free, ...). Weak: null without a
// runtime.
extern "C" {
void* __interceptor_malloc(size_t) __attribute__((weak));
void __interceptor_free(void*) __attribute__((weak));
void* __interceptor_calloc(size_t, size_t) __attribute__((weak));
void* __interceptor_realloc(void*, size_t) __attribute__((weak));
int __interceptor_posix_memalign(void**, size_t, size_t) __attribute__((weak));
size_t __interceptor_malloc_usable_size(const void*) __attribute__((weak));
}

namespace hakmem::platform {

// True when hakmem must leave every allocation to the sanitizer runtime in
// this process: hakmem itself is not instrumented (an uninstrumented
// libhakmem.so preloaded into an instrumented program), a runtime is
// present, and its allocation entry points are found. hakmem then serves
// nothing: the hak_ entry points forward what is not hakmem's to these
// functions. When hakmem is instrumented, its malloc and new overrides are
// compiled out instead, and this is false.
inline bool defer_to_sanitizer_allocator() noexcept {
#if HAKMEM_BUILT_WITH_SANITIZER_ALLOCATOR
  return false;
#else
  return sanitizer_runtime_in_process() != nullptr && &__interceptor_malloc != nullptr &&
         &__interceptor_free != nullptr && &__interceptor_calloc != nullptr &&
         &__interceptor_realloc != nullptr && &__interceptor_posix_memalign != nullptr &&
         &__interceptor_malloc_usable_size != nullptr;
#endif
}

}  // namespace hakmem::platform
