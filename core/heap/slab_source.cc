#include "core/heap/slab_source.h"

#include <new>

#include "core/heap/remote_free_protocol.h"
#include "platform/assert.h"
#include "platform/os.h"

namespace hakmem {

using lockfree::MemoryOrder;

namespace {

// The part of slab (run) i's area its owner may have touched since its pages
// were last decommitted (or mapped): up to its carve cursor, in whole pages.
// Blocks are carved in address order and only carved blocks are handed out,
// so the pages beyond are untouched. Its holder reads it (the cursor is an
// owner field).
size_t touched_bytes(const Chunk* c, unsigned i) {
  const uintptr_t begin = slab_area_begin(c, i);
  const uintptr_t end = align_up(c->slabs[i].carve.load(), kPageSize);
  const uintptr_t limit = slab_area_end(c, i);
  return end <= begin ? 0 : (end < limit ? end : limit) - begin;
}

}  // namespace

// Resets an owned slab whose blocks are all free to "never used": blocks are
// carved lazily from its area again.
void SlabSource::prepare_fresh(Slab* s) noexcept {
  Chunk* c = chunk_of_slab(s);
  const unsigned i = index_of_slab(c, s);
  if (s->dirty.load()) {
    dirty_bytes_.fetch_sub(touched_bytes(c, i), MemoryOrder::relaxed);  // before carve moves
    c->resident_hint.fetch_and(~(uint32_t{1} << i), MemoryOrder::relaxed);
  } else if (limit_ != nullptr) {
    limit_->note_growth(run_bytes(c));  // its pages become resident as it is carved
  }
  s->free.store(nullptr);
  s->carve.store(s->area_begin);
  s->carve_end.store(s->area_end());
  s->set_used(0);
  s->dirty.store(1);
}

Slab* SlabSource::own(ThreadHeap* heap, Chunk* c, unsigned i) noexcept {
  Slab* s = &c->slabs[i];
  HAKMEM_ASSERT(s->owner.load(MemoryOrder::relaxed) == nullptr &&
                    s->state.load(MemoryOrder::relaxed) != kSlabOwned,
                "I2: a slab claimed from a bitmap has no owner");
  s->take_ownership(heap);
  heads_[c->size_class].slabs_owned.fetch_add(1, MemoryOrder::relaxed);
  return s;
}

namespace {

// A descriptor of a slab that is not a run head (or heads a run too small
// for one block): no area, so no pointer is a block start of it.
void set_no_blocks(Slab* s, uintptr_t begin, uint32_t size, unsigned cls) {
  s->area_begin = begin;
  s->block_size = size;
  s->size_class = cls;
  s->set_divisor(size, 0);  // no pointer is a block start
  s->unfull_at = 0;
}

}  // namespace

// The first run head of a chunk with blocks: run 0, unless the header
// leaves it less than one block.
unsigned first_run(const Chunk* c) noexcept { return slab_capacity(c, 0) > 0 ? 0 : c->run_slabs; }

// The free-bitmap bits of every run of the chunk that holds blocks.
uint32_t all_run_bits(const Chunk* c) noexcept {
  uint32_t bits = 0;
  for (unsigned i = first_run(c); i + c->run_slabs <= kSlabsPerChunk; i += c->run_slabs) {
    bits |= run_mask(c, i);
  }
  return bits;
}

// Runs with blocks per chunk of class cls (slabs for a small class).
unsigned SlabSource::usable_runs(unsigned cls) noexcept {
  const unsigned k = class_run_slabs(cls);
  const size_t run0 = k * kSlabSize - kChunkHeaderSize;
  return runs_per_chunk(k) - (run0 >= class_to_size(cls) ? 0 : 1);
}

// Maps and initialises a chunk of `cls`; the caller publishes it with
// link_chunk(). Every run starts free, except the first if `keep_first`
// (the caller then owns it: first_run(c)).
Chunk* SlabSource::new_chunk(unsigned cls, bool keep_first) noexcept {
  void* mem = os::map_aligned(kChunkSize, kChunkSize);
  if (mem == nullptr) return nullptr;
  mapped_bytes_.fetch_add(kChunkSize, MemoryOrder::relaxed);
  Chunk* c = new (reinterpret_cast<void*>(chunk_header_address(reinterpret_cast<uintptr_t>(mem))))
      Chunk();
  c->magic = kChunkMagic ^ reinterpret_cast<uintptr_t>(c);
  c->size_class = cls;
  c->block_size = uint32_t(class_to_size(cls));
  c->run_slabs = class_run_slabs(cls);
  for (unsigned i = 0; i < kSlabsPerChunk; ++i) {
    if (is_run_head(c, i) && slab_capacity(c, i) > 0) {
      c->slabs[i].set_geometry(slab_area_begin(c, i), slab_capacity(c, i), c->block_size, cls);
    } else {
      set_no_blocks(&c->slabs[i], slab_area_begin(c, i), c->block_size, cls);
    }
  }
  uint32_t free_bits = all_run_bits(c);
  if (keep_first) free_bits &= ~run_mask(c, first_run(c));
  c->free_slabs.initialize(free_bits);
  return c;
}

// Gives back a chunk no other thread has seen.
void SlabSource::unmap_unpublished_chunk(Chunk* c) noexcept {
  mapped_bytes_.fetch_sub(kChunkSize, MemoryOrder::relaxed);
  os::unmap(reinterpret_cast<void*>(chunk_base(c)), kChunkSize);
}

// Publishes an initialised chunk: registry entry first (so frees of its
// blocks classify), then the ChunkList append.
void SlabSource::link_chunk(unsigned cls, Chunk* c) noexcept {
  registry_->set_one(c, kGranuleChunk);
  ClassHead& head = heads_[cls];
  const uint64_t position = head.chunks.append(c);
  if (policy_.log_expansion) {
    os::Line()
        .str("hakmem: class ")
        .u64(cls)
        .str(" (")
        .u64(class_to_size(cls))
        .str(" B): ")
        .u64(position + 1)
        .str(position == 0 ? " chunk\n" : " chunks\n")
        .write_to(os::kStderr);
  }
}

// A free slab of chunk c (a free run, for a medium class), now owned by heap.
int SlabSource::claim_run_in(Chunk* c) noexcept {
  const unsigned k = c->run_slabs;
  // One pass over a relaxed snapshot: it only picks candidates, claim_run
  // synchronises. A run is free iff all its bits are set (runs are fixed and
  // disjoint), so a failed claim means another thread took that run.
  // Runs still resident first (Chunk::resident_hint), then any.
  const uint32_t snapshot = c->free_slabs.snapshot();
  const uint32_t warm = c->resident_hint.load(MemoryOrder::relaxed);
  for (int pass = 0; pass < 2; ++pass) {
    for (unsigned i = first_run(c); i + k <= kSlabsPerChunk; i += k) {
      const uint32_t mask = run_mask(k, i);
      if ((snapshot & mask) != mask || ((warm >> i) & 1) != unsigned(pass == 0)) continue;
      if (c->free_slabs.claim_run(mask)) return int(i);
    }
  }
  return -1;
}

// A free slab of a small-class chunk, resident ones first.
int SlabSource::claim_slab_in(Chunk* c) noexcept {
  uint32_t warm = c->free_slabs.snapshot() & c->resident_hint.load(MemoryOrder::relaxed);
  while (warm != 0) {
    const unsigned i = unsigned(__builtin_ctz(warm));
    if (c->free_slabs.claim(i)) return int(i);
    warm &= warm - 1;
  }
  return c->free_slabs.claim_any();
}

Slab* SlabSource::claim_free_in(ThreadHeap* heap, Chunk* c) noexcept {
  if (c->free_slabs.snapshot() == 0) return nullptr;
  const int i = c->run_slabs == 1 ? claim_slab_in(c) : claim_run_in(c);
  if (i < 0) return nullptr;
  heads_[c->size_class].free_slabs.fetch_sub(1, MemoryOrder::relaxed);
  Slab* s = own(heap, c, unsigned(i));
  prepare_fresh(s);
  return s;
}

Slab* SlabSource::claim_any_free(ThreadHeap* heap, ClassHead& head) noexcept {
  if (head.free_slabs.load(MemoryOrder::relaxed) == 0) return nullptr;
  if (Chunk* c = head.chunks.current()) {
    if (Slab* s = claim_free_in(heap, c)) return s;
  }
  for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
    if (Slab* s = claim_free_in(heap, c)) return s;
  }
  return nullptr;
}

namespace {
bool has_blocks(Slab* s) { return s->free.load() != nullptr || s->carve.load() < s->carve_end.load(); }
}  // namespace

Slab* SlabSource::try_adopt(ThreadHeap* heap, Chunk* c, unsigned i) noexcept {
  Slab* s = &c->slabs[i];
  // Claim (acquire: the old owner's writes), take_ownership, drain.
  if (!adopt_slab(c->adoptable_slabs, i, s, heap)) return nullptr;
  ClassHead& head = heads_[c->size_class];
  head.adoptable_slabs.fetch_sub(1, MemoryOrder::relaxed);
  head.adoptions.fetch_add(1, MemoryOrder::relaxed);
  head.slabs_owned.fetch_add(1, MemoryOrder::relaxed);
  return s;
}

void SlabSource::run_due_checks() noexcept {
  if (passes_enabled()) maybe_purge(os::coarse_now_ns());
}

Slab* SlabSource::acquire(ThreadHeap* heap, unsigned cls) noexcept {
  HAKMEM_ASSERT(registry_ != nullptr, "the slab source is configured before use");
  run_due_checks();
  ClassHead& head = heads_[cls];
  ClassSlabs& cc = heap->slabs[cls];

  // 1. Adopt what exited threads left behind, so their memory is reused.
  if (head.adoptable_slabs.load(MemoryOrder::relaxed) > 0) {
    for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
      for (uint32_t bits; (bits = c->adoptable_slabs.snapshot()) != 0;) {
        Slab* s = try_adopt(heap, c, unsigned(__builtin_ctz(bits)));
        if (s == nullptr) continue;
        if (has_blocks(s)) return s;
        slab_list_add(cc, s, kOnFullList);  // every block still live
      }
    }
  }

  // 2. A free slab: first in the current chunk, then anywhere.
  if (Slab* s = claim_any_free(heap, head)) return s;

  // 3. Expand: a new chunk whose first slab (run) is ours before anyone can
  // see it.
  Chunk* c = new_chunk(cls, true);
  if (c == nullptr) return nullptr;
  // Threads that found no free slab at the same moment all get here; if one
  // of them linked its chunk meanwhile, use that chunk's slabs and give ours
  // back, so a burst of new threads does not map a chunk each.
  if (Slab* s = claim_any_free(heap, head)) {
    unmap_unpublished_chunk(c);
    return s;
  }
  Slab* s = own(heap, c, first_run(c));
  prepare_fresh(s);
  head.free_slabs.fetch_add(usable_runs(cls) - 1, MemoryOrder::relaxed);
  link_chunk(cls, c);
  return s;
}

// Decommits the area of slab (run) i of c, which the caller owns or holds
// claimed, and marks it clean.
void SlabSource::purge_pages(Chunk* c, unsigned i) noexcept {
  const uintptr_t begin = slab_area_begin(c, i);
  const size_t bytes = touched_bytes(c, i);
  if (bytes == 0) {
    c->slabs[i].dirty.store(0);
    c->resident_hint.fetch_and(~(uint32_t{1} << i), MemoryOrder::relaxed);
    return;
  }
  decommit_range(begin, bytes);
  purged_bytes_.fetch_add(bytes, MemoryOrder::relaxed);
  c->slabs[i].dirty.store(0);
  c->resident_hint.fetch_and(~(uint32_t{1} << i), MemoryOrder::relaxed);
}

// Returns `bytes` of pages at `begin` to the OS under the purge mode.
void SlabSource::decommit_range(uintptr_t begin, size_t bytes) noexcept {
  if (policy_.purge_lazily) {
    os::decommit_lazily(reinterpret_cast<void*>(begin), bytes);
  } else {
    os::decommit(reinterpret_cast<void*>(begin), bytes);
  }
}

uint64_t SlabSource::purge_chunk(Chunk* c, uint64_t now_ns, uint64_t min_age_ns) noexcept {
  uint64_t purged = 0;
  const unsigned k = c->run_slabs;
  const uint32_t snapshot = c->free_slabs.snapshot();  // candidates only
  for (unsigned i = first_run(c); i + k <= kSlabsPerChunk; i += k) {
    const uint32_t mask = run_mask(k, i);
    if ((snapshot & mask) != mask) continue;
    // Hold the slab while looking at it: the claim's acquire orders the
    // releasing owner's `dirty` and `released_at` before our reads, and the
    // release that follows publishes our writes to the next claimer.
    const bool claimed = k == 1 ? c->free_slabs.claim(i) : c->free_slabs.claim_run(mask);
    if (!claimed) continue;  // taken meanwhile: in use, nothing to purge
    Slab* s = &c->slabs[i];
    const uint64_t at = s->released_at.load();
    if (s->dirty.load() && now_ns >= at && now_ns - at >= min_age_ns) {
      const size_t bytes = touched_bytes(c, i);
      purge_pages(c, i);
      dirty_bytes_.fetch_sub(bytes, MemoryOrder::relaxed);
      purged += bytes;
    }
    if (k == 1) {
      c->free_slabs.release(i);
    } else {
      c->free_slabs.release_run(mask);
    }
  }
  return purged;
}

uint64_t SlabSource::purge_expired(uint64_t now_ns) noexcept {
  return purge_older(now_ns, decay_.decay_ns());
}

uint64_t SlabSource::purge_older(uint64_t now_ns, uint64_t min_age_ns) noexcept {
  uint64_t purged = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    if (dirty_bytes_.load(MemoryOrder::relaxed) == 0) break;  // nothing resident is free
    ClassHead& head = heads_[cls];
    const bool free_ones = head.free_slabs.load(MemoryOrder::relaxed) != 0;
    const bool reclaimed_ones = head.reclaimed_dirty.load(MemoryOrder::relaxed) != 0;
    if (!free_ones && !reclaimed_ones) continue;
    for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
      if (free_ones) purged += purge_chunk(c, now_ns, min_age_ns);
      if (reclaimed_ones) purged += purge_reclaimed_in(c, now_ns, min_age_ns);
    }
  }
  return purged;
}

// Counts `bytes` more of free pages kept resident if the total stays within
// `limit`, else counts nothing and returns false. Relaxed RMWs: the total is
// a budget, not a protocol (releases at once may each pass the bound by
// their own bytes, at most once).
bool SlabSource::reserve_dirty(size_t bytes, size_t limit) noexcept {
  if (dirty_bytes_.fetch_add(bytes, MemoryOrder::relaxed) + bytes <= limit) return true;
  dirty_bytes_.fetch_sub(bytes, MemoryOrder::relaxed);
  return false;
}

void SlabSource::release(Slab* s) noexcept {
  uint64_t now = 0;
  Chunk* c = chunk_of_slab(s);
  const unsigned i = index_of_slab(c, s);
  ClassHead& head = heads_[c->size_class];
  HAKMEM_ASSERT(s->used_count() == 0, "I5: a released slab has no live blocks");
  HAKMEM_ASSERT(s->list.load() == kOnNoList, "a released slab is on no heap list");
  s->give_up_ownership(kSlabFree);
  s->free.store(nullptr);
  s->set_used(0);
  // Memory-return policy (README, "Returning memory"): keep up to
  // HAKMEM_DIRTY_MB of free slabs resident for the decay time, and a burst
  // beyond it of as much again for the pressure passes' shorter one (see
  // kBurstFactor); return the rest at once.
  const MemDiet diet = policy_.diet;
  bool decommit = diet == MemDiet::kImmediate;
  const size_t bytes = touched_bytes(c, i);
  if (diet == MemDiet::kBounded && s->dirty.load()) {
    const size_t dirty_limit = this->dirty_limit();
    if (dirty_bytes_.load(MemoryOrder::relaxed) + bytes > dirty_limit && pressure_.enabled()) {
      // Make room by purging older free slabs first (rate-limited).
      const uint64_t t = os::coarse_now_ns();
      if (pressure_.claim_pass(t)) purge_older(t, pressure_.decay_ns());
    }
    const size_t burst_limit = pressure_.enabled() ? dirty_limit * kBurstFactor : dirty_limit;
    decommit = !reserve_dirty(bytes, burst_limit);
  } else if (diet == MemDiet::kKeep && s->dirty.load()) {
    dirty_bytes_.fetch_add(bytes, MemoryOrder::relaxed);
  }
  if (decommit) {
    if (limit_ != nullptr && limit_->in_pressure()) limit_->count_returned(bytes);
    purge_pages(c, i);
  } else if (s->dirty.load()) {
    c->resident_hint.fetch_or(uint32_t{1} << i, MemoryOrder::relaxed);
    if (decay_.enabled()) {
      now = os::coarse_now_ns();
      s->released_at.store(now);
    }
  }
  head.slabs_owned.fetch_sub(1, MemoryOrder::relaxed);
  head.free_slabs.fetch_add(1, MemoryOrder::relaxed);
  // Linearization point (release): the slab (run) is claimable.
  if (c->run_slabs == 1) {
    c->free_slabs.release(i);
  } else {
    c->free_slabs.release_run(run_mask(c, i));
  }
  if (now == 0 && (reclaim_.enabled() || limit_ != nullptr)) now = os::coarse_now_ns();
  if (now != 0) maybe_purge(now);
}

void SlabSource::abandon(Slab* s) noexcept {
  Chunk* c = chunk_of_slab(s);
  ClassHead& head = heads_[c->size_class];
  HAKMEM_ASSERT(s->used_count() != 0 && s->used_count() <= slab_capacity(s),
                "an abandoned slab has live blocks, at most its capacity");
  HAKMEM_ASSERT(s->list.load() == kOnNoList, "an abandoned slab is on no heap list");
  head.slabs_owned.fetch_sub(1, MemoryOrder::relaxed);
  head.adoptable_slabs.fetch_add(1, MemoryOrder::relaxed);
  // give_up_ownership, then the release RMW that publishes the owner's fields.
  const bool set = abandon_slab(c->adoptable_slabs, index_of_slab(c, s), s);
  HAKMEM_ASSERT(set, "an abandoned slab's adoptable bit was clear");
  (void)set;
}

unsigned SlabSource::collect_abandoned(ThreadHeap* heap, unsigned cls) noexcept {
  ClassHead& head = heads_[cls];
  if (head.adoptable_slabs.load(MemoryOrder::relaxed) == 0) return 0;
  unsigned released = 0;
  for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
    uint32_t bits = c->adoptable_slabs.snapshot();
    while (bits != 0) {
      const unsigned i = unsigned(__builtin_ctz(bits));
      bits &= bits - 1;
      Slab* s = &c->slabs[i];
      if (!adopt_slab(c->adoptable_slabs, i, s, heap)) continue;
      head.adoptable_slabs.fetch_sub(1, MemoryOrder::relaxed);
      head.slabs_owned.fetch_add(1, MemoryOrder::relaxed);
      if (s->used_count() == 0) {
        release(s);
        ++released;
      } else {
        abandon(s);
      }
    }
  }
  return released;
}

bool SlabSource::prewarm(unsigned cls, unsigned chunks) noexcept {
  for (unsigned n = 0; n < chunks; ++n) {
    Chunk* c = new_chunk(cls, false);
    if (c == nullptr) return false;
    heads_[cls].free_slabs.fetch_add(usable_runs(cls), MemoryOrder::relaxed);
    link_chunk(cls, c);
  }
  return true;
}

// --- Reclaiming the slabs of idle owners (idle_reclaim_protocol.h) ---

// Decommits the whole area of slab (run) i, which the caller holds: pages
// past the carve cursor may be resident from the slab's previous life (the
// cursor restarts at a reuse). Returns the bytes counted as touched.
uint64_t SlabSource::decommit_whole(Chunk* c, unsigned i) noexcept {
  const uintptr_t begin = slab_area_begin(c, i);
  const size_t bytes = touched_bytes(c, i);
  decommit_range(begin, slab_area_end(c, i) - begin);
  purged_bytes_.fetch_add(bytes, MemoryOrder::relaxed);
  c->slabs[i].dirty.store(0);
  return bytes;
}

// The pages of a slab just reclaimed (the caller holds the claim), under the
// release policy: kept resident within the dirty budget (the purge pass
// decommits them after the decay time, purge_reclaimed_in), else returned.
void SlabSource::reclaim_pages(Slab* s, uint64_t now_ns) noexcept {
  if (!s->dirty.load()) return;
  Chunk* c = chunk_of_slab(s);
  const unsigned i = index_of_slab(c, s);
  if (policy_.diet == MemDiet::kBounded && reserve_dirty(touched_bytes(c, i), dirty_limit())) {
    s->released_at.store(now_ns);
    heads_[c->size_class].reclaimed_dirty.fetch_add(1, MemoryOrder::relaxed);
    return;
  }
  decommit_whole(c, i);
}

uint64_t SlabSource::purge_reclaimed_in(Chunk* c, uint64_t now_ns, uint64_t min_age_ns) noexcept {
  uint64_t purged = 0;
  for (unsigned i = first_run(c); i + c->run_slabs <= kSlabsPerChunk; i += c->run_slabs) {
    IdleReclaim::claim_done(
        &c->slabs[i],
        [&](Slab* s) {
          const uint64_t at = s->released_at.load();
          if (!s->dirty.load() || now_ns < at || now_ns - at < min_age_ns) return;
          const uint64_t bytes = decommit_whole(c, i);
          dirty_bytes_.fetch_sub(bytes, MemoryOrder::relaxed);
          heads_[c->size_class].reclaimed_dirty.fetch_sub(1, MemoryOrder::relaxed);
          purged += bytes;
        },
        [this](Slab* s, bool reclaimed) { finish_detached(s, reclaimed); });
  }
  return purged;
}

// Whether `heap`'s owner made no slow call since a previous pass looked.
// Relaxed: a hint (a wrong answer only reclaims early or late).
bool SlabSource::owner_idle(ThreadHeap* heap, uint64_t pass) noexcept {
  const uint64_t calls = heap->slow_calls.load(MemoryOrder::relaxed) & ((uint64_t{1} << 48) - 1);
  const uint64_t mark = heap->idle_mark.load(MemoryOrder::relaxed);
  if ((mark >> 16) != calls) {
    heap->idle_mark.store(calls << 16 | (pass & 0xffff), MemoryOrder::relaxed);
    return false;
  }
  return (mark & 0xffff) != (pass & 0xffff);
}

uint64_t SlabSource::reclaim_idle(uint64_t now_ns) noexcept {
  const uint64_t pass = reclaim_passes_.fetch_add(1, MemoryOrder::relaxed) + 1;
  uint64_t reclaimed = 0;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    ClassHead& head = heads_[cls];
    if (head.slabs_owned.load(MemoryOrder::relaxed) == 0) continue;
    for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
      for (unsigned i = first_run(c); i + c->run_slabs <= kSlabsPerChunk; i += c->run_slabs) {
        Slab* s = &c->slabs[i];
        // Candidates from relaxed hints; try_reclaim decides.
        if (s->reclaim.load(MemoryOrder::relaxed) != kReclaimListed) continue;
        if (s->remote.empty() && s->used_count() != 0) continue;
        ThreadHeap* owner = s->owner.load(MemoryOrder::relaxed);
        // holds(): the owner's heap fields are read after its page's
        // initialisation (the owner pointer came from a relaxed load).
        if (owner == nullptr || !heaps_->holds(owner) || !owner_idle(owner, pass)) continue;
        const ReclaimOutcome r = IdleReclaim::try_reclaim(
            s, [&](Slab* x) { reclaim_pages(x, now_ns); },
            [this](Slab* x, bool done) { finish_detached(x, done); });
        if (r == ReclaimOutcome::kReclaimed) ++reclaimed;
      }
    }
  }
  if (reclaimed != 0) reclaimed_.fetch_add(reclaimed, MemoryOrder::relaxed);
  return reclaimed;
}

void SlabSource::release_reclaimed(Slab* s) noexcept {
  HAKMEM_ASSERT(s->remote.empty(), "a reclaimed slab's remote list was taken by its reclaimer");
  if (s->dirty.load()) {
    // Counted as dirty since the reclaim; release() counts it again.
    Chunk* c = chunk_of_slab(s);
    dirty_bytes_.fetch_sub(touched_bytes(c, index_of_slab(c, s)), MemoryOrder::relaxed);
    heads_[c->size_class].reclaimed_dirty.fetch_sub(1, MemoryOrder::relaxed);
  }
  s->free.store(nullptr);  // its blocks' pages may be gone: never walk it
  s->set_used(0);
  release(s);
}

void SlabSource::finish_detached(Slab* s, bool reclaimed) noexcept {
  if (reclaimed) return release_reclaimed(s);
  s->drain_remote();
  if (s->used_count() == 0) {
    release(s);
  } else {
    abandon(s);
  }
}

uint64_t SlabSource::mapped_bytes() const noexcept { return mapped_bytes_.load(MemoryOrder::relaxed); }
uint64_t SlabSource::dirty_bytes() const noexcept { return dirty_bytes_.load(MemoryOrder::relaxed); }
uint64_t SlabSource::purged_bytes() const noexcept { return purged_bytes_.load(MemoryOrder::relaxed); }

}  // namespace hakmem
