// SlabSource: where slabs come from and go to, the chunks of every size
// class.
//
// acquire() tries, in order: adopting a slab an exited thread abandoned
// (claim on the chunk's adoptable bitmap), claiming a free slab (claim on the
// free bitmap), and expanding the class by one chunk (map, initialise,
// register, append to the class's ChunkList with a CAS on tail->next).
// Every step is lock-free; expansion has no upper bound but the OS.
//
// The source owns the class heads and its counters; the registry it
// publishes chunks in and its memory-return policy are given to it once, by
// configure(), before the first slab is acquired.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/heap/heap_pool.h"
#include "core/heap/thread_heap.h"
#include "core/limit/memory_limit.h"
#include "core/meta/chunk.h"
#include "core/meta/chunk_registry.h"
#include "core/meta/size_classes.h"
#include "lockfree/chunk_list.h"
#include "lockfree/decay.h"
#include "lockfree/default_atomics.h"

namespace hakmem {

using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;

// One size class's chunks (the seed's SuperSlabHead).
struct ClassHead {
  lockfree::ChunkList<Chunk> chunks;
  // Hints (relaxed RMW, slow paths only): roughly how many slabs of this
  // class sit in free / adoptable bitmaps, so a refill can skip walking the
  // chunk list when there are none.
  Counter free_slabs{0};
  Counter adoptable_slabs{0};
  // Reclaimed slabs (kReclaimDone) whose pages are still resident: the
  // purge pass looks at them once they have decayed.
  Counter reclaimed_dirty{0};
  // Statistics.
  Counter slabs_owned{0};
  Counter adoptions{0};
  Counter remote_frees_of_exited_threads{0};
};

// What happens to the pages of a slab whose blocks are all free
// (README, "Returning memory"; HAKMEM_MEM_DIET, HAKMEM_DIRTY_MB).
enum class MemDiet : uint8_t {
  kKeep = 0,       // never returned
  kBounded = 1,    // kept resident up to dirty_limit bytes in all, the rest returned
  kImmediate = 2,  // returned at once
};

struct SlabSourcePolicy {
  MemDiet diet = MemDiet::kBounded;
  size_t dirty_limit = size_t{16} << 20;
  // Under kBounded: a free slab kept resident is decommitted once it has
  // been free this long (HAKMEM_PURGE_MS; 0: kept until reused).
  uint64_t purge_ns = uint64_t{1000} * 1000 * 1000;
  bool purge_lazily = false;  // HAKMEM_PURGE_MODE=free: MADV_FREE, not MADV_DONTNEED
  bool log_expansion = false;  // HAKMEM_LOG: one stderr line per new chunk
};

class SlabSource {
 public:
  // Over the dirty budget, free slabs that have been free for a
  // kPressureDivisor-th of the decay time are purged (at most one such pass
  // per quarter of that), and a released slab keeps its pages resident
  // while the free resident total stays within kBurstFactor times the
  // budget (with the decay on; HAKMEM_PURGE_MS=0 keeps the budget alone). A working set that cycles through a little more than the budget
  // thus reuses its slabs warm instead of faulting each one back in, and
  // the excess is gone a sixteenth of the decay time after the burst.
  static constexpr uint64_t kPressureDivisor = 16;
  static constexpr size_t kBurstFactor = 2;
  // `limit` (may be null): the memory limit whose checks run in this
  // source's purge passes and whose pressure empties the dirty budget.
  void configure(ChunkRegistry* registry, const HeapPool* heaps, const SlabSourcePolicy& policy,
                 MemoryLimit* limit = nullptr) noexcept {
    registry_ = registry;
    heaps_ = heaps;
    policy_ = policy;
    limit_ = limit != nullptr && limit->enabled() ? limit : nullptr;
    decay_.configure(policy.diet == MemDiet::kBounded ? policy.purge_ns : 0);
    pressure_.configure(policy.diet == MemDiet::kBounded ? policy.purge_ns / kPressureDivisor : 0);
    // Idle owners' slabs are reclaimed unless pages are never returned
    // (HAKMEM_MEM_DIET=0, or HAKMEM_PURGE_MS=0: kept until reused).
    reclaim_.configure(policy.diet == MemDiet::kKeep ? 0 : policy.purge_ns);
  }
  bool passes_enabled() const noexcept {
    return decay_.enabled() || reclaim_.enabled() || limit_ != nullptr;
  }
  bool reclaim_enabled() const noexcept { return reclaim_.enabled(); }
  // maybe_purge at the current time, if any pass is on at all: what a slow
  // path (a slab acquire, every kChecksEvery-th refill) calls.
  void run_due_checks() noexcept;
  // HAKMEM_DIRTY_MB, or 0 while the memory limit's pressure lasts.
  size_t dirty_limit() const noexcept {
    return limit_ != nullptr && limit_->in_pressure() ? 0 : policy_.dirty_limit;
  }

  // Runs a purge pass if one is due (lockfree/decay.h): cheap otherwise.
  // Called from acquire and release; the background purger calls it too.
  // Also runs a reclaim pass and a memory-limit check if one is due.
  void maybe_purge(uint64_t now_ns) noexcept {
    if (decay_.claim_pass(now_ns)) purge_expired(now_ns);
    // A burst above the budget decays in the pressure passes' time.
    if (dirty_bytes_.load(lockfree::MemoryOrder::relaxed) > dirty_limit() &&
        pressure_.claim_pass(now_ns)) {
      purge_older(now_ns, pressure_.decay_ns());
    }
    if (reclaim_.claim_pass(now_ns)) reclaim_idle(now_ns);
    if (limit_ != nullptr) limit_->maybe_check(now_ns);
  }
  // Reclaims every listed slab with no live block whose owner made no slow
  // call since the previous pass (core/heap/idle_reclaim_protocol.h): its
  // pages are returned per policy, and its owner releases it on its next
  // drain of its notices. Lock-free; the owners never wait. Returns the
  // slabs reclaimed.
  uint64_t reclaim_idle(uint64_t now_ns) noexcept;
  // Owner: a slab it took back reclaimed (owner_take said kReclaimed), on
  // no list: released to its chunk.
  void release_reclaimed(Slab* slab) noexcept;
  // A claimer whose slab its exiting owner detached: releases it if it was
  // reclaimed, else drains it and releases or abandons it.
  void finish_detached(Slab* slab, bool reclaimed) noexcept;
  uint64_t reclaimed_slabs() const noexcept { return reclaimed_.load(lockfree::MemoryOrder::relaxed); }
  // Decommits every free slab (run) that has been free for the decay time.
  // Lock-free: each slab is claimed from the free bitmap for the moment it
  // is looked at, then released again. Returns the bytes decommitted.
  uint64_t purge_expired(uint64_t now_ns) noexcept;
  // Decommits every free slab (run) whose pages are resident, and every
  // reclaimed one, however recently freed (memory-limit pressure,
  // hak_collect). Lock-free as purge_expired. Returns the bytes decommitted.
  uint64_t purge_all() noexcept { return purge_older(UINT64_MAX, 0); }
  const lockfree::DecaySchedule& decay() const noexcept { return decay_; }

  // A slab of class `cls` now owned by `heap`, with free or never-used
  // blocks; null only when the OS refuses memory.
  Slab* acquire(ThreadHeap* heap, unsigned cls) noexcept;

  // Claims slab i of chunk c from the adoptable bitmap for `heap` and drains
  // what other threads freed into it. Null if another thread adopted it first.
  Slab* try_adopt(ThreadHeap* heap, Chunk* c, unsigned i) noexcept;

  // Owner: the slab has no live blocks; make it claimable by anyone, and
  // return its pages to the OS according to the policy.
  void release(Slab* slab) noexcept;

  // Owner (exiting): the slab has live blocks; make it adoptable.
  void abandon(Slab* slab) noexcept;

  // Adopts every abandoned slab of `cls`, drains what other threads freed into
  // it, releases the ones that became empty and abandons the rest again.
  // Returns the number of slabs released.
  unsigned collect_abandoned(ThreadHeap* heap, unsigned cls) noexcept;

  // Maps `chunks` chunks of `cls` with every slab free (HAKMEM_PREWARM).
  bool prewarm(unsigned cls, unsigned chunks) noexcept;

  ClassHead& head(unsigned cls) noexcept { return heads_[cls]; }
  const ClassHead& head(unsigned cls) const noexcept { return heads_[cls]; }
  // Address space of the chunks mapped.
  uint64_t mapped_bytes() const noexcept;
  // Free slabs whose pages are still resident.
  uint64_t dirty_bytes() const noexcept;
  // Slab pages returned to the OS (decommitted) so far, in total.
  uint64_t purged_bytes() const noexcept;

 private:
  void prepare_fresh(Slab* s) noexcept;
  bool reserve_dirty(size_t bytes, size_t limit) noexcept;
  void purge_pages(Chunk* c, unsigned i) noexcept;
  void decommit_range(uintptr_t begin, size_t bytes) noexcept;
  uint64_t purge_chunk(Chunk* c, uint64_t now_ns, uint64_t min_age_ns) noexcept;
  uint64_t purge_reclaimed_in(Chunk* c, uint64_t now_ns, uint64_t min_age_ns) noexcept;
  void reclaim_pages(Slab* s, uint64_t now_ns) noexcept;
  uint64_t decommit_whole(Chunk* c, unsigned i) noexcept;
  bool owner_idle(ThreadHeap* heap, uint64_t pass) noexcept;
  uint64_t purge_older(uint64_t now_ns, uint64_t min_age_ns) noexcept;
  Slab* own(ThreadHeap* heap, Chunk* c, unsigned i) noexcept;
  Chunk* new_chunk(unsigned cls, bool keep_first) noexcept;
  static unsigned usable_runs(unsigned cls) noexcept;
  int claim_run_in(Chunk* c) noexcept;
  int claim_slab_in(Chunk* c) noexcept;
  void unmap_unpublished_chunk(Chunk* c) noexcept;
  void link_chunk(unsigned cls, Chunk* c) noexcept;
  Slab* claim_free_in(ThreadHeap* heap, Chunk* c) noexcept;
  Slab* claim_any_free(ThreadHeap* heap, ClassHead& head) noexcept;

  ChunkRegistry* registry_ = nullptr;
  const HeapPool* heaps_ = nullptr;  // whose heaps reclaim_idle looks at
  MemoryLimit* limit_ = nullptr;     // null: no memory limit
  SlabSourcePolicy policy_{};
  ClassHead heads_[kNumClasses];
  Counter mapped_bytes_{0};
  Counter dirty_bytes_{0};
  Counter purged_bytes_{0};
  lockfree::DecaySchedule decay_;
  // Over the dirty budget: at most one pass per interval purges slabs free
  // for a sixteenth of the decay time, so that the budget holds the most
  // recently freed slabs rather than the oldest.
  lockfree::DecaySchedule pressure_;
  // Reclaim passes (reclaim_idle): one per quarter of the decay time.
  lockfree::DecaySchedule reclaim_;
  Counter reclaim_passes_{0};
  Counter reclaimed_{0};
};

inline Chunk* chunk_of_slab(const Slab* s) { return chunk_of(s); }

// Runs of a chunk (chunk.h): the first run head with blocks, and the
// free-bitmap bits of all runs with blocks.
unsigned first_run(const Chunk* c) noexcept;
uint32_t all_run_bits(const Chunk* c) noexcept;

}  // namespace hakmem
