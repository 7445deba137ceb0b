// Internal entry points shared by the hak_ API, the malloc overrides and
// the statistics/check code.
#pragma once

#include <cstddef>

#include "core/thread_heap.h"

namespace hakmem {

// The calling thread's heap, creating it if needed; null if out of memory.
ThreadHeap* this_thread_heap() noexcept;
// The calling thread's heap if it has one (no creation).
ThreadHeap* existing_thread_heap() noexcept;

// free() with an optional size check (sized delete). `alignment` is the
// alignment the block was requested with (0 for none).
void free_checked(void* p, const char* function, size_t size, size_t alignment) noexcept;

// C++ sized delete: the size must be of the block's size class.
void delete_sized(void* p, size_t size) noexcept;

// Class used for an aligned small request, or kNumClasses if the request
// must go to the large path.
unsigned aligned_small_class(size_t size, size_t alignment) noexcept;

void install_crash_handlers() noexcept;

}  // namespace hakmem
