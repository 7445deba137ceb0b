#include "core/meta/chunk_registry.h"

#include "platform/assert.h"
#include "platform/os.h"

namespace hakmem {

using lockfree::MemoryOrder;

void ChunkRegistry::set(const void* p, size_t granules, GranuleKind kind) noexcept {
  Entry* t = table();
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) >> kChunkShift;
  for (size_t i = 0; i < granules; ++i) t[first + i].store(uint8_t(kind), MemoryOrder::release);
}

}  // namespace hakmem
