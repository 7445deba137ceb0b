// The process's lifecycle: its first allocation initialises the process
// state, a thread's first allocation gives it a heap, and its exit gives the
// heap's slabs back.
#include "core/alloc/process.h"

#include <time.h>

#include "core/alloc/refill.h"
#include "core/heap/remote_free.h"
#include "platform/assert.h"
#include "platform/cgroup.h"
#include "platform/os.h"

namespace hakmem {

using lockfree::MemoryOrder;

constinit Process g_process;
constinit ChunkRegistry g_registry;

__thread ThreadHeap* t_heap __attribute__((tls_model("initial-exec"))) = nullptr;
__thread bool t_heap_retired __attribute__((tls_model("initial-exec"))) = false;

namespace {

void abandon_or_release(Slab* s) noexcept {
  s->drain_remote();
  if (s->used_count() == 0) {
    g_process.slabs.release(s);
  } else {
    g_process.slabs.abandon(s);
  }
}

// A slab the exiting owner took off its list: taken back from reclaimers
// (released if one reclaimed it), or handed to the reclaimer that holds it,
// which finishes it (IdleReclaim::owner_detach): the exit never waits.
void leave_listed(Slab* s) noexcept {
  const OwnerTake r =
      IdleReclaim::owner_detach(s, [](Slab* x) { x->give_up_ownership(kSlabAbandoned); });
  if (r == OwnerTake::kTaken) {
    abandon_or_release(s);
  } else if (r == OwnerTake::kReclaimed) {
    g_process.slabs.release_reclaimed(s);
  }
}

// pthread key destructor: the thread is exiting. Its empty slabs become
// free, the others adoptable; blocks it still owns stay valid and may be
// freed by any thread later.
void thread_exit(void* arg) noexcept {
  auto* heap = static_cast<ThreadHeap*>(arg);
  t_heap = nullptr;  // an allocation from a later destructor makes a new heap
  t_heap_retired = true;
  // Pending remote frees first: they count as live blocks of other threads'
  // slabs (or of our own, which we are about to drain and abandon).
  flush_remote_frees(heap);
  heap->remote_batch.enabled = false;
  heap->remote_notices.drain([](Slab*) {});  // every owned slab is drained below
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    ClassSlabs& cc = heap->slabs[cls];
    if (Slab* s = retire_current(heap, cls)) abandon_or_release(s);
    while (Slab* s = slab_list_pop(cc, kOnPartialList)) leave_listed(s);
    while (Slab* s = slab_list_pop(cc, kOnFullList)) leave_listed(s);
    g_process.slabs.head(cls).remote_frees_of_exited_threads.fetch_add(
        heap->remote_frees[cls].load(MemoryOrder::relaxed), MemoryOrder::relaxed);
    if (cc.used) g_process.slabs.collect_abandoned(heap, cls);
  }
  g_process.threads_exited.fetch_add(1, MemoryOrder::relaxed);
  g_process.heaps.release(heap);
}

// The memory limit's purge (core/limit/memory_limit.h): idle owners'
// slabs first (their pages go back at once, the dirty budget being 0 under
// pressure), then everything retained.
uint64_t purge_for_limit(uint64_t now_ns) noexcept {
  if (g_process.slabs.reclaim_enabled()) g_process.slabs.reclaim_idle(now_ns);
  return release_retained_memory();
}

// The limit: HAKMEM_MEMORY_LIMIT_MB, else the cgroup's (platform/cgroup.h).
void configure_limit(const Config& cfg) noexcept {
  uint64_t bytes = 0;
  LimitSource source = LimitSource::kNone;
  platform::CgroupLimit cgroup;  // 2 KiB of paths, on the stack
  if (cfg.memory_limit_mb == Config::kLimitFromCgroup) {
    platform::read_cgroup_limit(platform::CgroupFiles{}, &cgroup);
    bytes = cgroup.limit_bytes;
    source = cgroup.version == platform::CgroupVersion::kV2   ? LimitSource::kCgroupV2
             : cgroup.version == platform::CgroupVersion::kV1 ? LimitSource::kCgroupV1
                                                              : LimitSource::kNone;
  } else if (cfg.memory_limit_mb != 0) {
    bytes = cfg.memory_limit_mb << 20;
    source = LimitSource::kKnob;  // the usage is then the process's resident set
  }
  g_process.limit.configure(bytes, source, cgroup.usage_path, cfg.purge_ms, &purge_for_limit);
}

// HAKMEM_VERBOSE: the limit and where it comes from.
void print_limit(int fd) noexcept {
  const MemoryLimit& l = g_process.limit;
  os::Line line;
  line.str("hakmem: memory limit ");
  if (!l.enabled()) {
    line.str("none (source none)\n").write_to(fd);
    return;
  }
  line.u64(l.limit_bytes())
      .str(" bytes (source ")
      .str(limit_source_name(l.source()))
      .str("), pressure from ")
      .u64(l.enter_at())
      .str(" to below ")
      .u64(l.leave_at())
      .str(" bytes of usage, checked every ")
      .u64(l.check_interval_ns() / 1000000)
      .str(" ms, usage from ")
      .str(l.usage_path()[0] ? l.usage_path() : "the process's resident set")
      .ch('\n')
      .write_to(fd);
}

// Everything the parts need from the configuration, handed to them once.
void configure_parts(const Config& cfg) noexcept {
  configure_limit(cfg);
  set_on_error(cfg.on_error);
  SlabSourcePolicy slab_policy;
  slab_policy.diet = MemDiet(cfg.mem_diet);
  slab_policy.dirty_limit = cfg.dirty_limit;
  slab_policy.log_expansion = cfg.log;
  slab_policy.purge_ns = cfg.purge_ms * 1000 * 1000;
  slab_policy.purge_lazily = cfg.purge_lazily;
  g_process.slabs.configure(&g_registry, &g_process.heaps, slab_policy, &g_process.limit);
  LargePolicy large_policy;
  large_policy.cache_limit = cfg.large_cache_limit;
  large_policy.decommit_cached = MemDiet(cfg.mem_diet) == MemDiet::kImmediate;
  large_policy.purge_ns = MemDiet(cfg.mem_diet) == MemDiet::kKeep ? 0 : slab_policy.purge_ns;
  g_process.large.configure(&g_registry, large_policy, &g_process.limit);
}

// The background purger (HAKMEM_BACKGROUND_PURGE=1): runs the same purge
// check as allocating threads, every decay interval, so that a process that
// stops allocating still returns its free slabs. It never allocates and has
// no heap.
void* background_purger(void*) noexcept {
  // The decay schedules' interval (lockfree/decay.h): a quarter of it.
  // A sixteenth more: the coarse clock may lag by a tick, and a wake-up just
  // before the schedule's next pass would skip a whole interval.
  const uint64_t quarter =
      g_process.config.purge_ms * 1000 * 1000 / lockfree::DecaySchedule::kIntervalDivisor;
  const uint64_t interval = quarter + quarter / 16;
  for (;;) {
    struct timespec ts = {time_t(interval / 1000000000u), long(interval % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    const uint64_t now = os::coarse_now_ns();
    g_process.slabs.maybe_purge(now);  // the reclaim of idle owners' slabs, the limit's check
    g_process.large.maybe_purge(now);
  }
  return nullptr;
}

// Started by the first thread heap's creation, outside any allocator
// operation: pthread_create may call malloc (for the new thread's TLS),
// which then finds this thread's heap ready.
void start_background_purger() noexcept {
  int expected = 0;
  // Relaxed: only elects the thread that starts the purger; pthread_create
  // publishes everything the purger reads (g_process is kReady by now).
  if (!g_process.purger_started.compare_exchange_strong(expected, 1, MemoryOrder::relaxed,
                                                        MemoryOrder::relaxed)) {
    return;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  if (pthread_create(&thread, &attr, background_purger, nullptr) != 0) {
    os::Line().str("hakmem: HAKMEM_BACKGROUND_PURGE: could not start the purger thread\n").write_to(os::kStderr);
  }
  pthread_attr_destroy(&attr);
}

}  // namespace

uint64_t release_retained_memory() noexcept {
  return g_process.slabs.purge_all() + g_process.large.unmap_all_cached();
}

bool initialize_slow() noexcept {
  int expected = kUninitialised;
  // This CAS elects the initialiser. Relaxed: initialisation cannot fail,
  // so the state leaves kUninitialised once and nothing was written before
  // it for the winner to acquire; what the winner writes is published by
  // its release store of kReady below, which is the linearization point.
  if (g_process.init_state.compare_exchange_strong(expected, kInitialising, MemoryOrder::relaxed,
                                                   MemoryOrder::relaxed)) {
    g_process.config = read_config_from_environment();
    g_process.tags.secret = os::random_u64();
    g_registry.init();
    configure_parts(g_process.config);
    pthread_key_create(&g_process.thread_key, thread_exit);
    // Release: publishes the configuration, the key and the parts' setup to
    // every thread whose acquire load sees kReady.
    g_process.init_state.store(kReady, MemoryOrder::release);
    const Config& cfg = g_process.config;
    for (unsigned i = 0; i < cfg.prewarm_count; ++i) {
      if (cfg.prewarm[i].size <= kMaxMediumSize) {
        g_process.slabs.prewarm(any_size_to_class(cfg.prewarm[i].size), cfg.prewarm[i].chunks);
      }
    }
    if (cfg.crash_report) install_crash_handlers();
    if (cfg.verbose) {
      print_config(cfg, 2);
      print_limit(2);
    }
    return true;
  }
  // Only threads racing the process's very first allocation get here: the
  // winner parses the environment and configures the parts, then publishes.
  while (g_process.init_state.load(MemoryOrder::acquire) != kReady) {
    lockfree::DefaultAtomics::pause();
  }
  return true;
}

ThreadHeap* this_thread_heap() noexcept {
  if (HAKMEM_LIKELY(t_heap != nullptr)) return t_heap;
  if (!ensure_initialized()) return nullptr;
  ThreadHeap* heap = g_process.heaps.acquire();
  if (heap == nullptr) return nullptr;
  heap->remote_batch.enabled = !t_heap_retired;
  t_heap = heap;
  pthread_setspecific(g_process.thread_key, heap);
  g_process.threads_started.fetch_add(1, MemoryOrder::relaxed);
  if (HAKMEM_UNLIKELY(g_process.config.background_purge) && g_process.config.purge_ms != 0 &&
      MemDiet(g_process.config.mem_diet) != MemDiet::kKeep) {
    start_background_purger();
  }
  return heap;
}

}  // namespace hakmem
