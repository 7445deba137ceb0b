// Heap misuse reports: one line on stderr naming the pointer and the error,
// then abort() (default) or, under HAKMEM_ON_ERROR=continue, return so the
// caller can ignore the bad call. Never allocates.
#pragma once

#include <cstddef>

namespace hakmem {

enum class HeapError {
  kDoubleFree,
  kNotOurs,          // not a pointer hakmem handed out (stack, global, foreign)
  kInterior,         // inside a hakmem block or metadata, not a block start
  kWrongSize,        // sized delete with a size of another size class
  kFreeOfUnusedSlab, // block of a slab with no live blocks (double free)
};

const char* heap_error_name(HeapError e);

// Reports; returns only under HAKMEM_ON_ERROR=continue.
void report_heap_error(HeapError e, const char* function, const void* ptr, size_t size = 0);

}  // namespace hakmem
