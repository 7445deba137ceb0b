#include "core/meta/chunk_registry.h"

#include "platform/assert.h"
#include "platform/os.h"

namespace hakmem {

using lockfree::MemoryOrder;

bool ChunkRegistry::init() noexcept {
  if (table_.load(MemoryOrder::acquire) != nullptr) return true;
  const size_t bytes = kEntries * sizeof(Entry);
  auto* fresh = static_cast<Entry*>(os::reserve(bytes));
  if (fresh == nullptr) return false;
  // Linearization point: the CAS publishing the table (release: nothing is
  // written to it before, but the acquire/release pairing keeps TSan and the
  // readers' view of the mapping consistent).
  Entry* expected = nullptr;
  if (!table_.compare_exchange_strong(expected, fresh, MemoryOrder::acq_rel,
                                      MemoryOrder::acquire)) {
    os::unmap(fresh, bytes);
  }
  return true;
}

void ChunkRegistry::set(const void* p, size_t granules, GranuleKind kind) noexcept {
  Entry* t = table_.load(MemoryOrder::acquire);
  HAKMEM_ASSERT(t != nullptr, "the registry is mapped before granules are marked");
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) >> kChunkShift;
  for (size_t i = 0; i < granules; ++i) t[first + i].store(uint8_t(kind), MemoryOrder::release);
}

}  // namespace hakmem
