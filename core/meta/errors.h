// Heap misuse reports: one line on stderr naming the function the program
// called, the pointer and the error, then abort() (default) or, under
// HAKMEM_ON_ERROR=continue, return so the caller can ignore the bad call.
// Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hakmem {

enum class HeapError {
  kDoubleFree,
  kNotOurs,          // not a pointer hakmem handed out (stack, global, foreign)
  kInterior,         // inside a hakmem block or metadata, not a block start
  kWrongSize,        // sized delete with a size of another size class
  kFreeOfUnusedSlab, // block of a slab with no live blocks (double free)
};

// What a report does after printing (HAKMEM_ON_ERROR).
enum class OnError : uint8_t { kAbort, kContinue };

const char* heap_error_name(HeapError e);

// Set once, when the process's configuration is read; abort until then.
void set_on_error(OnError policy) noexcept;

// Reports; returns only under HAKMEM_ON_ERROR=continue. The caller makes sure
// the configuration was read first (a bad free may be a process's first call).
void report_heap_error(HeapError e, const char* function, const void* ptr, size_t size = 0);

}  // namespace hakmem
