// The C allocation family and every C++ operator new/delete, routed to the
// hak_ API. Linked into //:hakmem (static) and //:libhakmem.so (LD_PRELOAD).
//
// Sanitizers (platform/sanitizer.h). Compiled with a sanitizer that brings
// its own allocator, this file defines none of the overrides: the
// sanitizer's allocator serves malloc and new, so that it sees the
// program's heap, and the hak_ API goes on working. An uninstrumented
// hakmem in a process with a sanitizer runtime (libhakmem.so preloaded
// into an instrumented program) forwards every request to the sanitizer's
// allocator instead (core/alloc/allocator.cc). Either way one line says so: on
// stderr at start for the preloaded library, under HAKMEM_LOG=1 for the
// instrumented build.
#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <new>

#include "api/hakmem.h"
#include "core/alloc/allocator.h"
#include "core/alloc/config.h"
#include "platform/os.h"
#include "platform/sanitizer.h"

namespace {

__attribute__((constructor)) void announce_sanitizer() {
  using hakmem::os::Line;
  if (const char* built_with = hakmem::platform::kBuiltWithSanitizer) {
    if (!hakmem::read_config_from_environment().log) return;
    Line()
        .str("hakmem: built with ")
        .str(built_with)
        .str(": its allocator serves malloc and new; the hak_ API is served by hakmem\n")
        .write_to(hakmem::os::kStderr);
  } else if (const char* runtime = hakmem::platform::sanitizer_runtime_in_process()) {
    Line line;
    line.str("hakmem: ").str(runtime).str(" is in this process: ");
    if (hakmem::platform::defer_to_sanitizer_allocator()) {
      line.str("its allocator serves malloc and new (hakmem steps aside)\n");
    } else {
      line.str("its allocator was not found, so hakmem serves malloc and the sanitizer cannot "
               "see the heap\n");
    }
    line.write_to(hakmem::os::kStderr);
  }
}

}  // namespace

#if !HAKMEM_BUILT_WITH_SANITIZER_ALLOCATOR

#define HAKMEM_EXPORT extern "C" __attribute__((visibility("default")))

// ---- Valgrind (built with HAKMEM_VALGRIND=1 only) ------------------------
// hakmem maps its memory itself, so Memcheck sees one big mmap and knows
// nothing of blocks. In a HAKMEM_VALGRIND build (//api:hakmem_valgrind)
// every block handed out is announced MALLOCLIKE over its usable size and
// every block freed FREELIKE, so leaks and accesses to freed blocks are
// reported. hakmem keeps a freed block's first 16 bytes (free-list link and
// free tag), so those are made accessible again right away. calloc and
// realloc are composed of malloc, memset/memcpy and free so hakmem never
// writes into a block Memcheck considers freed. In every other build these
// functions are empty and compile away.
#if defined(HAKMEM_VALGRIND) && HAKMEM_VALGRIND
#include <string.h>
#include <valgrind/memcheck.h>
namespace {
inline void* track_alloc(void* p, bool zeroed = false) {
  if (p != nullptr) VALGRIND_MALLOCLIKE_BLOCK(p, hak_usable_size(p), 0, zeroed);
  return p;
}
inline void track_free(void* p) {
  if (p == nullptr) return;
  const size_t n = hak_usable_size(p);
  if (n == 0) return;  // not a block: hakmem reports it
  VALGRIND_FREELIKE_BLOCK(p, 0);
  VALGRIND_MAKE_MEM_DEFINED(p, n < 16 ? n : 16);
}
inline void* tracked_calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  void* p = track_alloc(hak_malloc(total));
  if (p != nullptr) memset(p, 0, total);
  return p;
}
inline void* tracked_realloc(void* p, size_t size) {
  if (p == nullptr) return track_alloc(hak_malloc(size));
  const size_t old = hak_usable_size(p);
  if (old == 0) return hak_realloc(p, size);  // not a block: hakmem reports it
  if (size == 0) {
    track_free(p);
    hak_free(p);
    return nullptr;
  }
  void* q = track_alloc(hak_malloc(size));
  if (q == nullptr) return nullptr;
  memcpy(q, p, old < size ? old : size);
  track_free(p);
  hak_free(p);
  return q;
}
}  // namespace
#define HAKMEM_CALLOC tracked_calloc
#define HAKMEM_REALLOC tracked_realloc
#define HAKMEM_VALGRIND_HOOKS 1
#else
namespace {
inline void* track_alloc(void* p, bool = false) { return p; }
inline void track_free(void*) {}
}  // namespace
#define HAKMEM_CALLOC hak_calloc
#define HAKMEM_REALLOC hak_realloc
#define HAKMEM_VALGRIND_HOOKS 0
#endif

HAKMEM_EXPORT void* malloc(size_t size) { return track_alloc(hakmem::allocate(size)); }
HAKMEM_EXPORT void free(void* p) {
  track_free(p);
  hakmem::deallocate(p, "free");
}
HAKMEM_EXPORT void* calloc(size_t n, size_t size) { return HAKMEM_CALLOC(n, size); }
HAKMEM_EXPORT void* realloc(void* p, size_t size) { return HAKMEM_REALLOC(p, size); }
HAKMEM_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return HAKMEM_REALLOC(p, total);
}
HAKMEM_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  const int err = hak_posix_memalign(out, alignment, size);
  if (err == 0) track_alloc(*out);
  return err;
}
HAKMEM_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  return track_alloc(hak_aligned_alloc(alignment, size));
}
HAKMEM_EXPORT void* memalign(size_t alignment, size_t size) {
  // glibc's memalign takes any alignment: 0 and other non-powers of two are
  // rounded up to a power of two, and only those above SIZE_MAX / 2 + 1 fail
  // with EINVAL. Programs written against it rely on that.
  if ((alignment & (alignment - 1)) != 0) {
    if (alignment > SIZE_MAX / 2 + 1) {
      errno = EINVAL;
      return nullptr;
    }
    size_t pow2 = 1;
    while (pow2 < alignment) pow2 <<= 1;
    alignment = pow2;
  }
  return track_alloc(hak_aligned_alloc(alignment == 0 ? 1 : alignment, size));
}
HAKMEM_EXPORT void* valloc(size_t size) { return track_alloc(hak_aligned_alloc(4096, size)); }
HAKMEM_EXPORT void* pvalloc(size_t size) {
  const size_t page = 4096;
  if (size > SIZE_MAX - page) {
    errno = ENOMEM;
    return nullptr;
  }
  return track_alloc(hak_aligned_alloc(page, size == 0 ? page : (size + page - 1) & ~(page - 1)));
}
HAKMEM_EXPORT size_t malloc_usable_size(void* p) { return hak_usable_size(p); }
HAKMEM_EXPORT void cfree(void* p) {
  track_free(p);
  hak_free(p);
}

// ---- C++ ---------------------------------------------------------------

namespace {

// How an operator new form behaves, in the manner of tcmalloc's
// CppPolicy: whether it throws, and the alignment it was asked for.
struct NewPolicy {
  bool nothrow = false;
  size_t align = 0;  // 0: the default alignment

  constexpr NewPolicy Nothrow() const { return {true, align}; }
  constexpr NewPolicy AlignAs(std::align_val_t a) const { return {nothrow, static_cast<size_t>(a)}; }
};

constexpr NewPolicy kNew{};
constexpr NewPolicy kNothrow = kNew.Nothrow();

inline void* cpp_try_alloc(size_t size, NewPolicy policy) noexcept {
  return policy.align > hakmem::kMinAlign ? hak_aligned_alloc(policy.align, size)
                                          : hakmem::allocate(size);
}

// Everything but the fast path of operator new: the allocation itself, then
// on failure the new handler and a retry until it gives up, then failure as
// the policy says (std::bad_alloc, or null).
template <bool Nothrow>
__attribute__((noinline)) void* cpp_new_slow(size_t size, NewPolicy policy) noexcept(Nothrow) {
  for (;;) {
    if (void* p = cpp_try_alloc(size, policy)) return track_alloc(p);
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if constexpr (Nothrow) {
        return nullptr;
      } else {
        throw std::bad_alloc();
      }
    }
    if constexpr (Nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

template <NewPolicy Policy>
void* cpp_new_miss(size_t size) noexcept(Policy.nothrow) {
  return cpp_new_slow<Policy.nothrow>(size, Policy);
}

// Every operator new. The unaligned forms take malloc's fast path and leave
// everything else, whole, to cpp_new_slow (a tail call).
template <NewPolicy Policy>
HAKMEM_ALWAYS_INLINE void* cpp_new(size_t size) noexcept(Policy.nothrow) {
  if constexpr (HAKMEM_VALGRIND_HOOKS) {
    return cpp_new_slow<Policy.nothrow>(size, Policy);
  } else {
    return hakmem::allocate_or<cpp_new_miss<Policy>>(size);
  }
}

template <NewPolicy Policy>
HAKMEM_ALWAYS_INLINE void* cpp_new(size_t size, std::align_val_t a) noexcept(Policy.nothrow) {
  return cpp_new_slow<Policy.nothrow>(size, Policy.AlignAs(a));
}

// The unsized operator delete forms.
HAKMEM_ALWAYS_INLINE void cpp_delete(void* p) noexcept {
  track_free(p);
  hakmem::deallocate(p, "operator delete");
}

// The sized forms: the size must be of the block's size class (or fit its
// large block); with an alignment, of the class that alignment gave.
HAKMEM_ALWAYS_INLINE void cpp_delete_sized(void* p, size_t size, size_t align = 0) noexcept {
  track_free(p);
  if (align == 0) return hakmem::deallocate_sized(p, size, "operator delete");
  hakmem::deallocate_slow(p, "operator delete", size == 0 ? 1 : size, align);
}

}  // namespace

#define HAKMEM_CXX __attribute__((visibility("default")))

using std::align_val_t;
using std::nothrow_t;

HAKMEM_CXX void* operator new(size_t n) { return cpp_new<kNew>(n); }
HAKMEM_CXX void* operator new[](size_t n) { return cpp_new<kNew>(n); }
HAKMEM_CXX void* operator new(size_t n, const nothrow_t&) noexcept { return cpp_new<kNothrow>(n); }
HAKMEM_CXX void* operator new[](size_t n, const nothrow_t&) noexcept { return cpp_new<kNothrow>(n); }
HAKMEM_CXX void* operator new(size_t n, align_val_t a) { return cpp_new<kNew>(n, a); }
HAKMEM_CXX void* operator new[](size_t n, align_val_t a) { return cpp_new<kNew>(n, a); }
HAKMEM_CXX void* operator new(size_t n, align_val_t a, const nothrow_t&) noexcept {
  return cpp_new<kNothrow>(n, a);
}
HAKMEM_CXX void* operator new[](size_t n, align_val_t a, const nothrow_t&) noexcept {
  return cpp_new<kNothrow>(n, a);
}

HAKMEM_CXX void operator delete(void* p) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete[](void* p) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete(void* p, const nothrow_t&) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete[](void* p, const nothrow_t&) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete(void* p, size_t n) noexcept { cpp_delete_sized(p, n); }
HAKMEM_CXX void operator delete[](void* p, size_t n) noexcept { cpp_delete_sized(p, n); }
HAKMEM_CXX void operator delete(void* p, align_val_t) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete[](void* p, align_val_t) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete(void* p, align_val_t, const nothrow_t&) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete[](void* p, align_val_t, const nothrow_t&) noexcept { cpp_delete(p); }
HAKMEM_CXX void operator delete(void* p, size_t n, align_val_t a) noexcept {
  cpp_delete_sized(p, n, static_cast<size_t>(a));
}
HAKMEM_CXX void operator delete[](void* p, size_t n, align_val_t a) noexcept {
  cpp_delete_sized(p, n, static_cast<size_t>(a));
}

#endif  // !HAKMEM_BUILT_WITH_SANITIZER_ALLOCATOR
