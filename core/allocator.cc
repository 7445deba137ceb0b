// The allocation and free paths.
//
// Fast path (the owning thread, small block): malloc pops a list of the
// current slab's blocks held in the thread's heap; free checks the pointer
// and pushes the block onto its own slab's list, current or not (refill
// takes the current slab's list over when the heap's runs dry). Neither
// uses an atomic read-modify-write or takes a lock. Everything else
// (refill, remote free, large blocks, errors) is out of line below.
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "core/allocator.h"
#include "core/errors.h"
#include "core/global_state.h"
#include "core/hakmem.h"
#include "core/large.h"
#include "core/os.h"
#include "core/slab_source.h"
#include "platform/sanitizer.h"

#define HAKMEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAKMEM_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace hakmem {

using lockfree::MemoryOrder;

constinit GlobalState g_state;

namespace {

constinit Slab g_empty_slab;

// Initial-exec TLS: no allocation and no call into the dynamic loader on
// first access, which LD_PRELOAD requires.
__thread ThreadHeap* t_heap __attribute__((tls_model("initial-exec"))) = nullptr;

void* refill_and_alloc(ThreadHeap* heap, unsigned cls) noexcept;
void local_free_slow(ThreadHeap* heap, Slab* s) noexcept;
void free_remote(ThreadHeap* heap, Chunk* c, Slab* s, FreeBlock* b, uintptr_t tag) noexcept;
void* malloc_slow(size_t size, bool zero) noexcept;
void free_slow(void* p, const char* function, size_t size, size_t alignment) noexcept;

// ---------------------------------------------------------------- hot path

__attribute__((always_inline)) inline void* small_alloc(ThreadHeap* heap, unsigned cls) noexcept {
  HotClass& hot = heap->hot[cls];
  FreeBlock* b = hot.free;
  if (HAKMEM_LIKELY(b != nullptr)) {
    hot.free = b->remote_next.load();
    b->free_tag.store(0);  // live blocks never carry their free tag
    bump(hot.taken);
    return b;
  }
  return refill_and_alloc(heap, cls);
}

__attribute__((always_inline)) inline void small_free(void* p, const char* function) noexcept {
  Chunk* c = chunk_of(p);
  Slab* s = &c->slabs[slab_index_of(p)];
  FreeBlock* b = s->block_at(p);
  if (HAKMEM_UNLIKELY(b == nullptr)) return report_heap_error(HeapError::kInterior, function, p);
  const uintptr_t tag = free_tag_for(p);
  if (HAKMEM_UNLIKELY(b->free_tag.load() == tag)) {
    return report_heap_error(HeapError::kDoubleFree, function, p);
  }
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && s->owner.load(MemoryOrder::relaxed) == heap)) {
    const uint32_t used = s->push_local(b, tag);
    // One rarely taken branch: `|` and `&`, not `||` and `&&`, whose
    // separate branches on `used <= unfull_at` would be unpredictable.
    const bool unfull = (used <= s->unfull_at) & (s->list.load() == kOnFullList);
    if (HAKMEM_UNLIKELY((used == 0) | unfull)) {
      local_free_slow(heap, s);
    }
    return;
  }
  free_remote(heap, c, s, b, tag);
}

// ---------------------------------------------------------------- refill

// Turns up to a page's worth of the slab's never-used blocks into free ones,
// pushed onto `list`.
void carve_some(Slab* s, FreeBlock*& list) noexcept {
  uintptr_t at = s->carve.load();
  const uintptr_t end = s->carve_end.load();
  if (at >= end) return;
  const size_t bs = s->block_size;
  size_t n = bs >= kPageSize ? 1 : kPageSize / bs;
  if (n > (end - at) / bs) n = (end - at) / bs;
  FreeBlock* head = reinterpret_cast<FreeBlock*>(at);
  FreeBlock* b = head;
  // Carved blocks carry their free tag like every other free block, so a
  // stray free of one is caught as a double free. Without it, a block of a
  // slab whose pages were returned to the OS (tags zeroed) and that was
  // claimed again could be freed twice unnoticed and handed out twice.
  for (size_t k = 1; k < n; ++k) {
    FreeBlock* next = reinterpret_cast<FreeBlock*>(at + k * bs);
    b->remote_next.store(next);
    b->free_tag.store(free_tag_for(b));
    b = next;
  }
  b->remote_next.store(list);
  b->free_tag.store(free_tag_for(b));
  list = head;
  s->carve.store(at + n * bs);
}

// Makes `s` (owned, on no list) the class's current slab.
void make_current(ThreadHeap* heap, unsigned cls, Slab* s) noexcept {
  HotClass& hot = heap->hot[cls];
  hot.current = s;
  hot.free = nullptr;
  hot.taken.store(0, MemoryOrder::relaxed);
}

// Ends `current` status: the heap's list and count go back into the slab.
// Returns the slab, or null if the class had none.
Slab* retire_current(ThreadHeap* heap, unsigned cls) noexcept {
  HotClass& hot = heap->hot[cls];
  Slab* s = hot.current;
  if (s == &g_empty_slab) return nullptr;
  s->set_used(s->used_count() + uint32_t(hot.taken.load(MemoryOrder::relaxed)));
  if (FreeBlock* list = hot.free) {
    FreeBlock* last = list;
    while (FreeBlock* next = last->remote_next.load()) last = next;
    last->remote_next.store(s->free.load());
    s->free.store(list);
  }
  hot.free = nullptr;
  hot.current = &g_empty_slab;
  hot.taken.store(0, MemoryOrder::relaxed);
  return s;
}

// Moves a listed slab that has free blocks again to the partial list, or
// releases it if all its blocks are free.
void unfull(ThreadHeap* heap, Slab* s) noexcept {
  ClassCache& cc = heap->classes[s->size_class];
  slab_list_remove(cc, s);
  if (s->used_count() == 0) {
    release_slab(s);
  } else {
    slab_list_push(cc, s, kOnPartialList);
  }
}

// Drains the slabs remote freers queued on this heap's notices. A slab may
// have changed hands since it was queued; only our own full ones matter
// (the current and partial ones are drained when they are used).
void take_remote_notices(ThreadHeap* heap) noexcept {
  heap->remote_notices.drain([heap](Slab* s) {
    if (s->owner.load(MemoryOrder::relaxed) != heap || s->list.load() != kOnFullList) return;
    if (s->drain_remote() > 0) unfull(heap, s);
  });
}

// Another owned slab with free blocks, or a new one from the class.
Slab* next_slab(ThreadHeap* heap, unsigned cls) noexcept {
  ClassCache& cc = heap->classes[cls];
  if (!heap->remote_notices.empty()) take_remote_notices(heap);
  // Backstop for a notice that went astray (queued on the heap of a
  // slab's previous owner): now and then, look at every full slab.
  if (cc.full != nullptr && cc.partial == nullptr && (++cc.refills & 255) == 0) {
    for (Slab* s = cc.full; s != nullptr;) {
      Slab* next = s->next.load();
      if ((!s->remote.empty() && s->drain_remote() > 0) || s->free.load() != nullptr) unfull(heap, s);
      s = next;
    }
  }
  if (Slab* s = slab_list_pop(cc, kOnPartialList)) {
    s->drain_remote();
    return s;
  }
  return acquire_slab(heap, cls);
}

// Refills the heap's list of the current slab `s` (which is empty) from the
// slab: blocks the owner freed into it, then blocks other threads freed,
// then never-used blocks. Returns false if the slab has none left.
bool take_free_blocks(Slab* s, HotClass& hot) noexcept {
  if (s->free.load() == nullptr) s->drain_remote();
  hot.free = s->free.load();
  s->free.store(nullptr);
  if (hot.free == nullptr) carve_some(s, hot.free);
  return hot.free != nullptr;
}

inline void* pop_hot(HotClass& hot) noexcept {
  FreeBlock* b = hot.free;
  hot.free = b->remote_next.load();
  b->free_tag.store(0);
  bump(hot.taken);
  return b;
}

// The current slab's list is empty: take what other threads freed into it,
// carve more of it, or move on to another slab.
void* refill_and_alloc(ThreadHeap* heap, unsigned cls) noexcept {
  ClassCache& cc = heap->classes[cls];
  HotClass& hot = heap->hot[cls];
  cc.used = true;
  Slab* s = hot.current;
  if (s != &g_empty_slab) {
    if (take_free_blocks(s, hot)) return pop_hot(hot);
    slab_list_push(cc, retire_current(heap, cls), kOnFullList);  // every block is out
  }
  s = next_slab(heap, cls);
  if (s == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  make_current(heap, cls, s);
  take_free_blocks(s, hot);  // next_slab returns slabs with free or never-used blocks
  return pop_hot(hot);
}

// ---------------------------------------------------------------- free

// The slab became empty, or is full with a quarter free now.
void local_free_slow(ThreadHeap* heap, Slab* s) noexcept {
  // The current slab's own count is only part of its used count (the rest
  // is in the heap); it is never released while current.
  if (heap->hot[s->size_class].current == s) return;
  unfull(heap, s);
}

void free_remote(ThreadHeap* heap, Chunk* c, Slab* s, FreeBlock* b, uintptr_t tag) noexcept {
  const uint8_t state = s->state.load(MemoryOrder::relaxed);
  if (HAKMEM_UNLIKELY(state == kSlabFree)) {
    return report_heap_error(HeapError::kFreeOfUnusedSlab, "free", b);
  }
  // A block of a slab whose owner exited: adopt the slab (one claim on the
  // adoptable bitmap, the same price as a remote push), so this and later
  // frees into it are local, as a successor thread's frees usually are.
  if (state == kSlabAbandoned && heap != nullptr) {
    const unsigned i = slab_index_of(b);
    if (try_adopt_slab(heap, c, i) == s) {
      ClassCache& cc = heap->classes[c->size_class];
      const uint32_t used = s->push_local(b, tag);
      if (used == 0) {
        release_slab(s);
      } else {
        slab_list_push(cc, s, used <= s->unfull_at ? kOnPartialList : kOnFullList);
      }
      return;
    }
  }
  if (s->push_remote(b, tag) && lockfree::NotifyQueue<Slab>::try_claim(s)) {
    // The list was empty and the slab is not queued yet: tell its owner.
    // A stale owner is harmless (heaps are never unmapped, and an owner
    // ignores notices for slabs it no longer owns); an abandoned slab needs
    // no notice, its adopter drains it.
    ThreadHeap* owner = s->owner.load(MemoryOrder::relaxed);
    if (owner == nullptr) {
      // Confirm with an RMW, ordered against an adopter's exchange in
      // take_ownership: a relaxed load may miss an adoption that finished.
      s->owner.compare_exchange_strong(owner, nullptr, MemoryOrder::acq_rel,
                                       MemoryOrder::acquire);
    }
    if (owner != nullptr) {
      owner->remote_notices.push_claimed(s);
    } else {
      lockfree::NotifyQueue<Slab>::unclaim(s);
    }
  }
  if (heap != nullptr) {
    bump(heap->remote_frees[c->size_class]);
  } else {
    g_state.classes[c->size_class].remote_frees_of_exited_threads.fetch_add(
        1, MemoryOrder::relaxed);
  }
}

void free_slow(void* p, const char* function, size_t size, size_t alignment) noexcept {
  const GranuleKind kind = g_state.registry.kind_of(p);
  if (kind == kGranuleForeign && platform::defer_to_sanitizer_allocator()) {
    return __interceptor_free(p);
  }
  if (kind == kGranuleChunk) {
    if (size != 0) {
      const unsigned expected =
          alignment > kMinAlign ? aligned_small_class(size, alignment) : (size <= kMaxSmallSize ? size_to_class(size) : kNumClasses);
      if (expected != chunk_of(p)->size_class) {
        return report_heap_error(HeapError::kWrongSize, function, p, size);
      }
    }
    return small_free(p, function);
  }
  if (LargeHeader* h = large_header_for(p, kind)) {
    if (h->magic == kLargeFreedMagic) return report_heap_error(HeapError::kDoubleFree, function, p);
    if (size != 0 && size > large_usable_size(h)) {
      return report_heap_error(HeapError::kWrongSize, function, p, size);
    }
    return large_free(h);
  }
  report_heap_error(kind == kGranuleForeign ? HeapError::kNotOurs : HeapError::kInterior, function,
                    p);
}

// ---------------------------------------------------------------- threads

void abandon_or_release(Slab* s) noexcept {
  s->drain_remote();
  if (s->used_count() == 0) {
    release_slab(s);
  } else {
    abandon_slab(s);
  }
}

// pthread key destructor: the thread is exiting. Its empty slabs become
// free, the others adoptable; blocks it still owns stay valid and may be
// freed by any thread later.
void thread_exit(void* arg) noexcept {
  auto* heap = static_cast<ThreadHeap*>(arg);
  t_heap = nullptr;  // an allocation from a later destructor makes a new heap
  heap->remote_notices.drain([](Slab*) {});  // every owned slab is drained below
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    ClassCache& cc = heap->classes[cls];
    if (Slab* s = retire_current(heap, cls)) abandon_or_release(s);
    while (Slab* s = slab_list_pop(cc, kOnPartialList)) abandon_or_release(s);
    while (Slab* s = slab_list_pop(cc, kOnFullList)) abandon_or_release(s);
    g_state.classes[cls].remote_frees_of_exited_threads.fetch_add(
        heap->remote_frees[cls].load(MemoryOrder::relaxed), MemoryOrder::relaxed);
    if (cc.used) collect_abandoned(heap, cls);
  }
  g_state.threads_exited.fetch_add(1, MemoryOrder::relaxed);
  g_state.heaps.release(heap);
}

bool initialize_slow() noexcept {
  int expected = 0;
  if (g_state.init_state.compare_exchange_strong(expected, 1, MemoryOrder::acquire,
                                                 MemoryOrder::acquire)) {
    g_state.config = read_config_from_environment();
    g_state.free_tag_secret = os::random_u64();
    if (!g_state.registry.init()) {
      g_state.init_state.store(0, MemoryOrder::release);
      return false;
    }
    pthread_key_create(&g_state.thread_key, thread_exit);
    g_state.init_state.store(2, MemoryOrder::release);
    const Config& cfg = g_state.config;
    for (unsigned i = 0; i < cfg.prewarm_count; ++i) {
      if (cfg.prewarm[i].size <= kMaxSmallSize) {
        prewarm_class(size_to_class(cfg.prewarm[i].size), cfg.prewarm[i].chunks);
      }
    }
    if (cfg.crash_report) install_crash_handlers();
    return true;
  }
  // Only threads racing the process's very first allocation get here: the
  // winner parses the environment and maps the registry, then publishes.
  for (;;) {
    const int state = g_state.init_state.load(MemoryOrder::acquire);
    if (state == 2) return true;
    if (state == 0) return initialize_slow();
    lockfree::DefaultAtomics::pause();
  }
}

void* malloc_slow(size_t size, bool zero) noexcept {
  if (HAKMEM_UNLIKELY(platform::defer_to_sanitizer_allocator())) {
    return zero ? __interceptor_calloc(1, size) : __interceptor_malloc(size);
  }
  if (size <= kMaxSmallSize) {
    ThreadHeap* heap = this_thread_heap();
    if (heap == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    void* p = small_alloc(heap, size_to_class(size));
    if (zero && p != nullptr) memset(p, 0, size);
    return p;
  }
  if (!ensure_initialized()) {
    errno = ENOMEM;
    return nullptr;
  }
  return large_alloc(size, 0, zero);
}

}  // namespace

Slab* empty_slab() { return &g_empty_slab; }

bool ensure_initialized() noexcept {
  if (HAKMEM_LIKELY(g_state.init_state.load(MemoryOrder::acquire) == 2)) return true;
  return initialize_slow();
}

ThreadHeap* existing_thread_heap() noexcept { return t_heap; }

ThreadHeap* this_thread_heap() noexcept {
  if (HAKMEM_LIKELY(t_heap != nullptr)) return t_heap;
  if (!ensure_initialized()) return nullptr;
  ThreadHeap* heap = g_state.heaps.acquire();
  if (heap == nullptr) return nullptr;
  t_heap = heap;
  pthread_setspecific(g_state.thread_key, heap);
  g_state.threads_started.fetch_add(1, MemoryOrder::relaxed);
  return heap;
}

unsigned aligned_small_class(size_t size, size_t alignment) noexcept {
  // Power-of-two classes from a page-aligned slab start are aligned to
  // min(block size, page size); every power of two up to 32 KiB is a class.
  if (alignment > kPageSize) return kNumClasses;
  size_t want = size > alignment ? size : alignment;
  if (want > kMaxSmallSize) return kNumClasses;
  size_t pow2 = kMinAlign;
  while (pow2 < want) pow2 <<= 1;
  return size_to_class(pow2);
}

void delete_sized(void* p, size_t size) noexcept {
  if (size == 0) size = 1;
  if (HAKMEM_LIKELY(g_state.registry.kind_of(p) == kGranuleChunk && size <= kMaxSmallSize)) {
    const Slab* s = &chunk_of(p)->slabs[slab_index_of(p)];
    if (HAKMEM_LIKELY(class_to_size(size_to_class(size)) == s->block_size)) {
      return small_free(p, "operator delete");
    }
  }
  free_checked(p, "operator delete", size, 0);
}

void free_checked(void* p, const char* function, size_t size, size_t alignment) noexcept {
  if (p == nullptr) return;
  free_slow(p, function, size, alignment);
}

}  // namespace hakmem

// ---------------------------------------------------------------- hak_ API

using namespace hakmem;

extern "C" {

void* hak_malloc(size_t size) {
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && size <= kMaxSmallSize)) {
    return small_alloc(heap, size_to_class(size));
  }
  return malloc_slow(size, false);
}

void hak_free(void* p) {
  if (HAKMEM_LIKELY(g_state.registry.kind_of(p) == kGranuleChunk)) return small_free(p, "free");
  if (p != nullptr) free_slow(p, "free", 0, 0);
}

// realloc keeps a small block of `usable` bytes for a new size it would not
// save much by moving (hak_realloc and hak_free_sized share this rule).
static inline bool realloc_keeps_block(size_t size, size_t usable) {
  return size <= usable && (size > usable / 2 || usable <= 64);
}

void hak_free_sized(void* p, size_t size) {
  // As C23 free_sized: `size` is the size passed to malloc, calloc or to the
  // realloc that returned p. A realloc that shrank in place leaves a size of
  // a smaller class in a larger block, which is not an error.
  if (g_state.registry.kind_of(p) == kGranuleChunk &&
      realloc_keeps_block(size, chunk_of(p)->block_size)) {
    size = 0;  // plausible: no size check, the usual checks still apply
  }
  free_checked(p, "free_sized", size, 0);
}

void* hak_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  ThreadHeap* heap = t_heap;
  if (HAKMEM_LIKELY(heap != nullptr && total <= kMaxSmallSize)) {
    void* p = small_alloc(heap, size_to_class(total));
    if (p != nullptr) memset(p, 0, total);
    return p;
  }
  return malloc_slow(total, true);
}

size_t hak_usable_size(const void* p) {
  const GranuleKind kind = g_state.registry.kind_of(p);
  if (kind == kGranuleChunk) return chunk_of(p)->block_size;
  if (kind == kGranuleForeign && p != nullptr && platform::defer_to_sanitizer_allocator()) {
    return __interceptor_malloc_usable_size(p);
  }
  const LargeHeader* h = large_header_for(p, kind);
  return h != nullptr && h->magic != kLargeFreedMagic ? large_usable_size(h) : 0;
}

int hak_owns(const void* p) {
  const GranuleKind kind = g_state.registry.kind_of(p);
  if (kind == kGranuleChunk) {
    Chunk* c = chunk_of(p);
    Slab* s = &c->slabs[slab_index_of(p)];
    void* q = const_cast<void*>(p);
    return s->block_at(q) != nullptr && s->state.load(MemoryOrder::relaxed) != kSlabFree &&
           static_cast<FreeBlock*>(q)->free_tag.load() != free_tag_for(p);
  }
  const LargeHeader* h = large_header_for(p, kind);
  return h != nullptr && h->magic != kLargeFreedMagic;
}

void* hak_realloc(void* p, size_t size) {
  if (p == nullptr) return hak_malloc(size);
  if (size == 0) {
    hak_free(p);
    return nullptr;
  }
  const GranuleKind kind = g_state.registry.kind_of(p);
  size_t old_usable;
  if (kind == kGranuleChunk) {
    Chunk* c = chunk_of(p);
    Slab* s = &c->slabs[slab_index_of(p)];
    FreeBlock* b = s->block_at(p);
    if (b == nullptr) {
      report_heap_error(HeapError::kInterior, "realloc", p);
      return nullptr;
    }
    if (b->free_tag.load() == free_tag_for(p) || s->state.load(MemoryOrder::relaxed) == kSlabFree) {
      report_heap_error(HeapError::kDoubleFree, "realloc", p);
      return nullptr;
    }
    old_usable = c->block_size;
    // Stay in place unless the block would be less than half used.
    if (realloc_keeps_block(size, old_usable)) return p;
  } else if (LargeHeader* h = large_header_for(p, kind)) {
    if (h->magic == kLargeFreedMagic) {
      report_heap_error(HeapError::kDoubleFree, "realloc", p);
      return nullptr;
    }
    old_usable = h->requested;
    if (size > kMaxSmallSize) {
      if (void* q = large_try_resize_in_place(h, size)) return q;
      if (void* q = large_grow(h, size)) return q;
    }
  } else if (kind == kGranuleForeign && platform::defer_to_sanitizer_allocator()) {
    return __interceptor_realloc(p, size);
  } else {
    report_heap_error(kind == kGranuleForeign ? HeapError::kNotOurs : HeapError::kInterior,
                      "realloc", p);
    return nullptr;
  }
  void* q = hak_malloc(size);
  if (q == nullptr) return nullptr;  // the old block stays valid
  memcpy(q, p, size < old_usable ? size : old_usable);
  hak_free(p);
  return q;
}

void* hak_reallocarray(void* p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return hak_realloc(p, total);
}

void* hak_aligned_alloc(size_t alignment, size_t size) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= kMinAlign) return hak_malloc(size);
  if (HAKMEM_UNLIKELY(platform::defer_to_sanitizer_allocator())) {
    void* p = nullptr;
    const int err = __interceptor_posix_memalign(&p, alignment, size);
    if (err != 0) errno = err;
    return err == 0 ? p : nullptr;
  }
  const unsigned cls = aligned_small_class(size, alignment);
  if (cls < kNumClasses) return hak_malloc(class_to_size(cls));
  if (!ensure_initialized()) {
    errno = ENOMEM;
    return nullptr;
  }
  return large_alloc(size, alignment, false);
}

int hak_posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  const int saved = errno;
  void* p = hak_aligned_alloc(alignment, size);
  if (p == nullptr) {
    const int err = errno;
    errno = saved;
    return err == 0 ? ENOMEM : err;
  }
  *out = p;
  return 0;
}

size_t hak_collect(void) {
  ThreadHeap* heap = this_thread_heap();
  if (heap == nullptr) return 0;
  size_t released = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) released += collect_abandoned(heap, cls);
  return released;
}

}  // extern "C"
