// The C allocation family and every C++ operator new/delete, routed to the
// hak_ API. Linked into //:hakmem (static) and //:libhakmem.so (LD_PRELOAD).
#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <new>

#include "core/allocator.h"
#include "core/hakmem.h"

#define HAKMEM_EXPORT extern "C" __attribute__((visibility("default")))

HAKMEM_EXPORT void* malloc(size_t size) { return hak_malloc(size); }
HAKMEM_EXPORT void free(void* p) { hak_free(p); }
HAKMEM_EXPORT void* calloc(size_t n, size_t size) { return hak_calloc(n, size); }
HAKMEM_EXPORT void* realloc(void* p, size_t size) { return hak_realloc(p, size); }
HAKMEM_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  return hak_reallocarray(p, n, size);
}
HAKMEM_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  return hak_posix_memalign(out, alignment, size);
}
HAKMEM_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  return hak_aligned_alloc(alignment, size);
}
HAKMEM_EXPORT void* memalign(size_t alignment, size_t size) {
  return hak_aligned_alloc(alignment, size);
}
HAKMEM_EXPORT void* valloc(size_t size) { return hak_aligned_alloc(4096, size); }
HAKMEM_EXPORT void* pvalloc(size_t size) {
  const size_t page = 4096;
  if (size > SIZE_MAX - page) {
    errno = ENOMEM;
    return nullptr;
  }
  return hak_aligned_alloc(page, size == 0 ? page : (size + page - 1) & ~(page - 1));
}
HAKMEM_EXPORT size_t malloc_usable_size(void* p) { return hak_usable_size(p); }
HAKMEM_EXPORT void cfree(void* p) { hak_free(p); }

// ---- C++ ---------------------------------------------------------------

namespace {

void* new_or_throw(size_t size) {
  for (;;) {
    if (void* p = hak_malloc(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* new_aligned_or_throw(size_t size, std::align_val_t al) {
  for (;;) {
    if (void* p = hak_aligned_alloc(static_cast<size_t>(al), size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* new_nothrow(size_t size) noexcept {
  try {
    return new_or_throw(size);
  } catch (...) {
    return nullptr;
  }
}

void* new_aligned_nothrow(size_t size, std::align_val_t al) noexcept {
  try {
    return new_aligned_or_throw(size, al);
  } catch (...) {
    return nullptr;
  }
}

void sized_delete(void* p, size_t size) noexcept { hakmem::delete_sized(p, size); }

void sized_aligned_delete(void* p, size_t size, std::align_val_t al) noexcept {
  hakmem::free_checked(p, "operator delete", size == 0 ? 1 : size, static_cast<size_t>(al));
}

}  // namespace

#define HAKMEM_CXX __attribute__((visibility("default")))

HAKMEM_CXX void* operator new(size_t size) { return new_or_throw(size); }
HAKMEM_CXX void* operator new[](size_t size) { return new_or_throw(size); }
HAKMEM_CXX void* operator new(size_t size, const std::nothrow_t&) noexcept { return new_nothrow(size); }
HAKMEM_CXX void* operator new[](size_t size, const std::nothrow_t&) noexcept { return new_nothrow(size); }
HAKMEM_CXX void* operator new(size_t size, std::align_val_t al) { return new_aligned_or_throw(size, al); }
HAKMEM_CXX void* operator new[](size_t size, std::align_val_t al) { return new_aligned_or_throw(size, al); }
HAKMEM_CXX void* operator new(size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return new_aligned_nothrow(size, al);
}
HAKMEM_CXX void* operator new[](size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return new_aligned_nothrow(size, al);
}

HAKMEM_CXX void operator delete(void* p) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete[](void* p) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete(void* p, const std::nothrow_t&) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete(void* p, size_t size) noexcept { sized_delete(p, size); }
HAKMEM_CXX void operator delete[](void* p, size_t size) noexcept { sized_delete(p, size); }
HAKMEM_CXX void operator delete(void* p, std::align_val_t) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete[](void* p, std::align_val_t) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { hak_free(p); }
HAKMEM_CXX void operator delete(void* p, size_t size, std::align_val_t al) noexcept {
  sized_aligned_delete(p, size, al);
}
HAKMEM_CXX void operator delete[](void* p, size_t size, std::align_val_t al) noexcept {
  sized_aligned_delete(p, size, al);
}
