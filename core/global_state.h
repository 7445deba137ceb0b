// The allocator's process-wide state: configuration, the chunk registry,
// one ClassHead per size class, the heap pool and the large-block cache.
// It lives in static storage and is constant-initialised, so it is usable
// before any constructor runs (LD_PRELOAD programs allocate very early).
#pragma once

#include <pthread.h>

#include <cstdint>

#include "core/chunk.h"
#include "core/chunk_registry.h"
#include "core/config.h"
#include "core/heap_pool.h"
#include "core/large.h"
#include "core/size_classes.h"
#include "lockfree/chunk_list.h"
#include "lockfree/default_atomics.h"

namespace hakmem {

using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;

// The seed's SuperSlabHead: one size class's chunks.
struct ClassHead {
  lockfree::ChunkList<Chunk> chunks;
  // Hints (relaxed RMW, slow paths only): roughly how many slabs of this
  // class sit in free / adoptable bitmaps, so a refill can skip walking the
  // chunk list when there are none.
  Counter free_slabs{0};
  Counter adoptable_slabs{0};
  // Statistics.
  Counter slabs_owned{0};
  Counter adoptions{0};
  Counter remote_frees_of_exited_threads{0};
};

struct GlobalState {
  lockfree::DefaultAtomics::Atomic<int> init_state{0};  // 0 new, 1 initialising, 2 ready
  Config config{};
  uintptr_t free_tag_secret = 0;
  pthread_key_t thread_key{};
  ChunkRegistry registry;
  ClassHead classes[kNumClasses];
  HeapPool heaps;
  LargeCache large;
  Counter bytes_mapped{0};
  Counter dirty_bytes{0};  // free slabs whose pages are still resident
  Counter threads_started{0};
  Counter threads_exited{0};
};

extern GlobalState g_state;

// Initialises g_state on first use. Cheap once ready (one acquire load).
bool ensure_initialized() noexcept;

inline uintptr_t free_tag_for(const void* block) {
  return g_state.free_tag_secret ^ reinterpret_cast<uintptr_t>(block);
}

}  // namespace hakmem
