// hak_check(): walks hakmem's metadata and reports broken invariants.
//
// Checked for every class: the chunk list is acyclic, positions increase by
// one, the count matches, `current` is a linked chunk, every chunk is
// registered with its own class and magic, and every slab's state agrees
// with the chunk's bitmaps. For slabs the calling thread owns, the free
// list is walked: every block lies in its slab, starts a block,
// carries its free tag (so a write to a freed block's first 16 bytes is
// caught), lies before the carve cursor (a block in the never-used part on
// a free list was freed without ever being handed out: a double free that
// the free path could not see), and appears once; and
// free + used + never-used == capacity. The caller's heap lists and current
// slabs are checked too. Other threads' slabs change under our feet, so for
// them only the shared fields are checked; call hak_check when other
// threads are quiescent for the strongest check. Never allocates.
#include "api/hakmem.h"
#include "core/alloc/process.h"
#include "core/heap/remote_free.h"
#include "platform/os.h"

namespace hakmem {
namespace {

using lockfree::MemoryOrder;

struct Checker {
  size_t problems = 0;

  void fail(const char* what, unsigned cls, const void* where) {
    ++problems;
    os::Line()
        .str("hakmem: check: class ")
        .u64(cls)
        .str(": ")
        .str(what)
        .str(" at ")
        .hex(reinterpret_cast<uintptr_t>(where))
        .ch('\n')
        .write_to(os::kStderr);
  }

  void check_free_list(unsigned cls, Chunk* c, unsigned i, Slab* s, ThreadHeap* me) {
    // A current slab's free list and used count live partly in the heap.
    FreeBlock* list = s->free.load();
    uint32_t used = s->used_count();
    FreeBlock* heap_list = nullptr;
    if (me != nullptr && me->hot[cls].current == s) {
      heap_list = me->hot[cls].free;
      used += uint32_t(me->hot[cls].taken.load(MemoryOrder::relaxed));
    }
    const uintptr_t begin = slab_area_begin(c, i), end = slab_area_end(c, i);
    const unsigned capacity = slab_capacity(c, i);
    const uintptr_t carve = s->carve.load(), carve_end = s->carve_end.load();
    if (carve < begin || carve > carve_end || carve_end > end) {
      return fail("carve cursor out of range", cls, s);
    }
    // One bit per block of the slab (at most 64 KiB / 16 B), on the stack.
    constexpr unsigned kMaxBlocks = kSlabSize / kMinAlign;
    uint64_t seen[kMaxBlocks / 64] = {};
    unsigned free_count = 0;
    for (FreeBlock* b = list != nullptr ? list : heap_list; b != nullptr;) {
      const uintptr_t a = reinterpret_cast<uintptr_t>(b);
      if (a < begin || a + c->block_size > end || (a - begin) % c->block_size != 0) {
        return fail("free-list block outside its slab or misaligned", cls, b);
      }
      if (a >= carve) return fail("free-list block in the never-used area (double free?)", cls, b);
      const size_t index = (a - begin) / c->block_size;
      if (seen[index / 64] & (uint64_t{1} << (index % 64))) {
        return fail("block twice on a free list (double free or cycle)", cls, b);
      }
      seen[index / 64] |= uint64_t{1} << (index % 64);
      if (b->free_tag.load() != g_process.tags.tag_for(b)) {
        fail("free block lost its free tag (written after free?)", cls, b);
      }
      ++free_count;
      b = b->next.load();
      if (b == nullptr && list != nullptr) {  // the slab's list, then the heap's
        b = heap_list;
        list = nullptr;
      }
    }
    const unsigned never_used = unsigned((carve_end - carve) / c->block_size);
    if (free_count + used + never_used != capacity) {
      fail("free + used + never-used blocks != capacity", cls, s);
    }
  }

  // A listed slab is taken back from reclaimers for the walk (a reclaimer
  // may purge its pages); one a reclaimer holds is skipped, one it
  // reclaimed is released.
  void check_owned(unsigned cls, Chunk* c, unsigned i, Slab* s, ThreadHeap* me) {
    if (s->list.load() == kOnNoList) return check_free_list(cls, c, i, s, me);
    switch (IdleReclaim::owner_take(s)) {
      case OwnerTake::kBusy:
        return;
      case OwnerTake::kReclaimed:
        slab_list_remove(me->slabs[cls], s);
        return g_process.slabs.release_reclaimed(s);
      case OwnerTake::kTaken:
        check_free_list(cls, c, i, s, me);
        IdleReclaim::publish_listed(s);
        return;
    }
  }

  void check_chunk(unsigned cls, Chunk* c, ThreadHeap* me) {
    if (c->magic != (kChunkMagic ^ reinterpret_cast<uintptr_t>(c))) fail("bad chunk magic", cls, c);
    if (c->size_class != cls) fail("chunk on another class's list", cls, c);
    if (g_registry.kind_of(c) != kGranuleChunk) fail("chunk missing from registry", cls, c);
    const uint32_t free_bits = c->free_slabs.snapshot();
    const uint32_t adoptable_bits = c->adoptable_slabs.snapshot();
    if (free_bits & adoptable_bits) fail("slab both free and adoptable", cls, c);
    for (unsigned i = 0; i < kSlabsPerChunk; ++i) {
      Slab* s = &c->slabs[i];
      // A run (chunk.h) is one slab to the heaps: its head's descriptor
      // holds its state, and its bits are all set (free) or all clear.
      if (!is_run_head(c, i)) {
        if (s->state.load(MemoryOrder::relaxed) != kSlabFree) fail("run interior slab in use", cls, s);
        continue;
      }
      const uint32_t mask = run_mask(c, i);
      if ((free_bits & mask) != 0 && (free_bits & mask) != mask) fail("run partly free", cls, s);
      const uint8_t state = s->state.load(MemoryOrder::relaxed);
      const bool is_free = (free_bits >> i) & 1, is_adoptable = (adoptable_bits >> i) & 1;
      if (is_free && state != kSlabFree) fail("free bit set on a slab in use", cls, s);
      if (is_adoptable && state != kSlabAbandoned) fail("adoptable bit on a non-abandoned slab", cls, s);
      // (An owned slab's count is checked with its free list below; a current
      // slab's own count is partial and may even be below zero.)
      if (state == kSlabAbandoned && s->used_count() > slab_capacity(c, i)) {
        fail("more used blocks than capacity", cls, s);
      }
      if (state == kSlabOwned && s->owner.load(MemoryOrder::relaxed) == me && me != nullptr) {
        check_owned(cls, c, i, s, me);
      }
    }
  }

  void check_class(unsigned cls, ThreadHeap* me) {
    const ClassHead& head = g_process.slabs.head(cls);
    const uint64_t count = head.chunks.count();
    Chunk* current = head.chunks.current();
    bool current_seen = current == nullptr;
    uint64_t walked = 0;
    for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
      if (head.chunks.position(c) != walked) fail("chunk position out of sequence", cls, c);
      if (c == current) current_seen = true;
      check_chunk(cls, c, me);
      if (++walked > count + 1024) return fail("chunk list longer than its count (cycle?)", cls, c);
    }
    if (walked < count) fail("chunk count exceeds linked chunks", cls, current);
    if (!current_seen) fail("current is not a linked chunk", cls, current);
  }

  void check_heap(ThreadHeap* me) {
    for (unsigned cls = 0; cls < kNumClasses; ++cls) {
      ClassSlabs& cc = me->slabs[cls];
      Slab* cur = me->hot[cls].current;
      if (cur == nullptr) {
        fail("null current slab", cls, me);
      } else if (cur != empty_slab()) {
        if (cur->owner.load(MemoryOrder::relaxed) != me) fail("current slab not owned by its heap", cls, cur);
        if (chunk_of(cur)->size_class != cls) fail("current slab of another class", cls, cur);
        if (cur->list.load() != kOnNoList) fail("current slab also on a heap list", cls, cur);
      } else if (cur->free.load() != nullptr || cur->used_count() != 0 || me->hot[cls].free != nullptr) {
        fail("the shared empty slab was written, or has a free list", cls, cur);
      }
      for (uint8_t which : {uint8_t(kOnPartialList), uint8_t(kOnFullList)}) {
        unsigned n = 0;
        for (Slab* s = slab_list_head(cc, which); s != nullptr; s = s->next.load()) {
          if (s->owner.load(MemoryOrder::relaxed) != me) fail("heap list holds a slab it does not own", cls, s);
          if (s->list.load() != which) fail("slab on the wrong heap list", cls, s);
          if (chunk_of(s)->size_class != cls) fail("slab of another class on heap list", cls, s);
          if (++n > (1u << 26)) return fail("heap slab list cycle", cls, s);
        }
      }
    }
  }
};

}  // namespace
}  // namespace hakmem

extern "C" size_t hak_check(void) {
  using namespace hakmem;
  if (!g_process.ready()) return 0;
  Checker checker;
  ThreadHeap* me = t_heap;
  if (me != nullptr) flush_remote_frees(me);  // the caller's pending frees are not "lost"
  for (unsigned cls = 0; cls < kNumClasses; ++cls) checker.check_class(cls, me);
  if (me != nullptr) checker.check_heap(me);
  return checker.problems;
}
