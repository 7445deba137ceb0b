// The process-wide state of the allocator, defined and initialised here:
// the configuration, the free-tag key, the chunk registry, the slab source
// (every class's chunks), the heap pool and the large allocator. (Three
// small pieces live with their modules: the error policy in
// core/meta/errors.cc, the shared empty slab in core/heap/heap_pool.cc and
// the previous signal handlers in crash_report.cc.) The parts
// below this layer never reach for it: initialize() hands each part what it
// needs (the registry, its policy), and the paths of this layer pass the
// part they use.
//
// It lives in static storage and is constant-initialised, so it is usable
// before any constructor runs (LD_PRELOAD programs allocate very early).
#pragma once

#include <pthread.h>

#include <cstdint>

#include "core/alloc/config.h"
#include "core/heap/heap_pool.h"
#include "core/heap/slab_source.h"
#include "core/large/large.h"
#include "core/limit/memory_limit.h"
#include "core/meta/chunk_registry.h"
#include "core/meta/slab.h"
#include "lockfree/default_atomics.h"
#include "platform/compiler.h"

namespace hakmem {

enum InitState : int { kUninitialised = 0, kInitialising = 1, kReady = 2 };

struct Process {
  lockfree::DefaultAtomics::Atomic<int> init_state{kUninitialised};
  Config config{};
  FreeTagKey tags{};
  pthread_key_t thread_key{};
  SlabSource slabs;
  HeapPool heaps;
  LargeAllocator large;
  MemoryLimit limit;
  // Bytes hak_collect returned to the OS so far.
  Counter collected_bytes{0};
  Counter threads_started{0};
  Counter threads_exited{0};
  // 1 once a thread has started the background purger (process.cc).
  lockfree::DefaultAtomics::Atomic<int> purger_started{0};

  bool ready() const noexcept {
    return init_state.load(lockfree::MemoryOrder::acquire) == kReady;
  }
};

extern Process g_process;

// The process's registry, apart from g_process: its 64 MiB table is all
// zero bytes at start, so that it lands in .bss (address space only), while
// g_process has non-zero initialisers and lives in .data.
extern ChunkRegistry g_registry;

bool initialize_slow() noexcept;

// Returns every free slab's resident pages and every cached large range to
// the OS now, however recently freed (memory-limit pressure, hak_collect).
// Lock-free. Returns the bytes returned.
uint64_t release_retained_memory() noexcept;

// Initialises the process state on first use. Cheap once ready (one acquire
// load): the initialiser's release store of kReady publishes everything it
// wrote.
HAKMEM_ALWAYS_INLINE bool ensure_initialized() noexcept {
  if (HAKMEM_LIKELY(g_process.ready())) return true;
  return initialize_slow();
}

// Initial-exec TLS: no allocation and no call into the dynamic loader on
// first access, which LD_PRELOAD requires. Null until the thread's first
// allocation, and again from its exit on.
extern __thread ThreadHeap* t_heap __attribute__((tls_model("initial-exec")));

// Set when the thread's heap has gone through thread_exit: from then on a
// free never creates a heap, and a heap made by a later allocation (from
// another TLS destructor) does not batch remote frees, since nothing may
// flush it.
extern __thread bool t_heap_retired __attribute__((tls_model("initial-exec")));

// The calling thread's heap, creating it if needed; null if out of memory.
ThreadHeap* this_thread_heap() noexcept;

void install_crash_handlers() noexcept;

}  // namespace hakmem
