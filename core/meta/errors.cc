#include "core/meta/errors.h"

#include <stdlib.h>

#include "platform/os.h"

namespace hakmem {
namespace {

// Written once at initialisation, before any thread but the initialiser can
// report; read by reports.
constinit OnError g_on_error = OnError::kAbort;

}  // namespace

const char* heap_error_name(HeapError e) {
  switch (e) {
    case HeapError::kDoubleFree:
      return "double free";
    case HeapError::kNotOurs:
      return "pointer was not allocated by hakmem";
    case HeapError::kInterior:
      return "pointer is not the start of a hakmem block";
    case HeapError::kWrongSize:
      return "sized delete with a size that does not match the block";
    case HeapError::kFreeOfUnusedSlab:
      return "double free (block of an unused slab)";
  }
  return "heap error";
}

void set_on_error(OnError policy) noexcept { g_on_error = policy; }

void report_heap_error(HeapError e, const char* function, const void* ptr, size_t size) {
  os::Line line;
  line.str("hakmem: ").str(function).str("(").hex(reinterpret_cast<uintptr_t>(ptr)).str("): ");
  line.str(heap_error_name(e));
  if (e == HeapError::kWrongSize) line.str(" (size ").u64(size).str(")");
  const bool keep_going = g_on_error == OnError::kContinue;
  line.str(keep_going ? "; ignored\n" : "; aborting\n");
  line.write_to(os::kStderr);
  if (!keep_going) abort();
}

}  // namespace hakmem
