// Workloads whose blocks are freed by threads other than the ones that
// allocated them.
#include "tools/workloads/commands.h"

namespace workloads {
namespace {

// A bounded single-producer/single-consumer queue of pointers, in harness
// memory. Blocking is by spinning with Backoff; the owner of both ends
// decides what to do while it waits.
struct alignas(64) Mailbox {
  static constexpr uint64_t kCap = 4;  // batches in flight per link: bounds the memory held
  alignas(64) std::atomic<uint64_t> head{0};
  alignas(64) std::atomic<uint64_t> tail{0};
  alignas(64) void* slot[kCap];

  bool TryPush(void* p) {
    const uint64_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) == kCap) return false;
    slot[t % kCap] = p;
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
  void* TryPop() {
    const uint64_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return nullptr;
    void* p = slot[h % kCap];
    head.store(h + 1, std::memory_order_release);
    return p;
  }
};

// ---------------------------------------------------------------------------
// batch-handoff: threads allocate batches of `batch` blocks of `size` bytes,
// write them, keep the batch's pointers in an array they also malloc (just
// over 32 KiB for 4096 blocks) and hand each batch to another thread, which
// checks and frees every block and the array; so every free is a
// cross-thread free. With ring=0 (the default) threads come in pairs, a
// producer that only allocates and a consumer that only frees; with ring=1
// the threads form a ring and each frees what its predecessor allocated
// while allocating for its successor. An operation is one block passed (one
// malloc plus one free).

struct BatchHeader {
  uint64_t n;
  uint64_t size;
  void* blocks[1];  // n entries
};

struct alignas(64) HandoffArg {
  bool produces, consumes;
  uint64_t batch, size;
  Mailbox* out;  // to the next thread
  Mailbox* in;   // from the previous one
  uint64_t freed;
};

std::atomic<int> g_handoff_running{0};

uint64_t FreeHandedBatch(void* p) {
  auto* b = static_cast<BatchHeader*>(p);
  const uint64_t n = b->n;
  for (uint64_t i = 0; i < n; ++i) CheckedFree(b->blocks[i], b->size);
  free(b);
  return n;
}

void* HandoffWorker(void* a) {
  auto* arg = static_cast<HandoffArg*>(a);
  unsigned spins = 0;
  while (!Stopped()) {
    if (!arg->produces) {
      if (void* in = arg->in->TryPop()) {
        arg->freed += FreeHandedBatch(in);
      } else {
        Backoff(spins);
      }
      continue;
    }
    auto* b = static_cast<BatchHeader*>(
        Malloc(sizeof(BatchHeader) + sizeof(void*) * (arg->batch - 1)));
    b->n = arg->batch;
    b->size = arg->size;
    for (uint64_t i = 0; i < arg->batch; ++i) {
      b->blocks[i] = Malloc(arg->size);
      bench::Stamp(b->blocks[i], arg->size);
    }
    // Free what arrives while waiting for room, so two full mailboxes
    // cannot wait on each other.
    while (!arg->out->TryPush(b)) {
      if (void* in = arg->consumes ? arg->in->TryPop() : nullptr) {
        arg->freed += FreeHandedBatch(in);
      } else {
        Backoff(spins);
      }
    }
    while (void* in = arg->consumes ? arg->in->TryPop() : nullptr) {
      arg->freed += FreeHandedBatch(in);
    }
  }
  // A consumer keeps freeing until every thread stopped producing, then
  // drains what is left (a producer never pops: its mailbox has one reader).
  g_handoff_running.fetch_sub(1, std::memory_order_acq_rel);
  if (!arg->consumes) return nullptr;
  while (g_handoff_running.load(std::memory_order_acquire) > 0) {
    if (void* in = arg->in->TryPop()) {
      arg->freed += FreeHandedBatch(in);
    } else {
      Backoff(spins);
    }
  }
  while (void* in = arg->in->TryPop()) arg->freed += FreeHandedBatch(in);
  return nullptr;
}

}  // namespace

int BatchHandoff(Options& o) {
  static const char* const kKnown[] = {"seconds", "threads", "batch", "size", "ring", "seed",
                                       nullptr};
  const double seconds = o.Double("seconds", 2);
  const int threads = static_cast<int>(o.Size("threads", 4));
  const uint64_t batch = o.Size("batch", 4096), size = o.Size("size", 64);
  const bool ring = o.Size("ring", 0) != 0;
  o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 2 || (!ring && threads % 2 != 0) || batch < 1 ||
      size < 1) {
    return 2;
  }

  Mailbox* boxes = HarnessArray<Mailbox>(threads);
  for (int i = 0; i < threads; ++i) new (&boxes[i]) Mailbox();
  HandoffArg* args = HarnessArray<HandoffArg>(threads);
  for (int i = 0; i < threads; ++i) {
    if (ring) {
      args[i] = HandoffArg{true, true, batch, size, &boxes[i], &boxes[(i + threads - 1) % threads], 0};
    } else {
      // Thread 2k produces into mailbox k; thread 2k+1 consumes from it.
      Mailbox* box = &boxes[i / 2];
      args[i] = HandoffArg{i % 2 == 0, i % 2 == 1, batch, size, box, box, 0};
    }
  }
  g_handoff_running.store(threads);
  const double elapsed = RunTimed(threads, args, HandoffWorker, seconds);
  uint64_t freed = 0;
  for (int i = 0; i < threads; ++i) freed += args[i].freed;
  char extra[96];
  snprintf(extra, sizeof extra, "threads=%d ring=%d batch=%" PRIu64 " size=%" PRIu64, threads,
           ring ? 1 : 0, batch, size);
  return Finish("batch-handoff", static_cast<double>(freed), elapsed, extra);
}

namespace {

// ---------------------------------------------------------------------------
// lifetimes: threads with mixed block lifetimes, recreated over and over.
// The main thread keeps `threads` workers in flight; each performs `allocs`
// allocations of min..max bytes and exits, and is replaced. Of the blocks it
// allocates, 50% are temporaries (freed at once), 35% live in the worker's
// window of the last 256 such blocks (freed when pushed out, or at exit) and
// 15% go into a table of 4096 long-lived slots shared by every worker: the
// block a slot held before (allocated by another worker, often one that has
// exited) is freed. An operation is one allocator call.

constexpr uint64_t kWindow = 256;
constexpr uint64_t kShared = 4096;

struct LifetimesConfig {
  uint64_t allocs, min, max, seed;
};
LifetimesConfig g_life;
std::atomic<void*>* g_life_slots;
std::atomic<uint64_t> g_life_ops{0};
std::atomic<uint64_t> g_life_seq{0};

// A long-lived block carries its size at bytes 8..15 (past the stamp's tag,
// before its last byte), so one exchange on a slot hands it over whole.
constexpr uint64_t kSharedMin = 24;

void FreeShared(void* p) {
  uint64_t size;
  memcpy(&size, static_cast<char*>(p) + 8, sizeof size);
  CheckedFree(p, size);
}

void* LifetimesWorker(void*) {
  Rng rng(g_life.seed, g_life_seq.fetch_add(1, std::memory_order_relaxed));
  void* window[kWindow] = {};
  uint64_t window_size[kWindow] = {};
  uint64_t next = 0, ops = 0;
  for (uint64_t i = 0; i < g_life.allocs; ++i) {
    const uint64_t r = rng.Below(100);
    uint64_t size = rng.Between(g_life.min, g_life.max);
    if (r < 50) {
      void* p = Malloc(size);
      bench::Stamp(p, size);
      CheckedFree(p, size);
      ops += 2;
    } else if (r < 85) {
      void* p = Malloc(size);
      bench::Stamp(p, size);
      const uint64_t k = next++ % kWindow;
      if (window[k] != nullptr) {
        CheckedFree(window[k], window_size[k]);
        ++ops;
      }
      window[k] = p;
      window_size[k] = size;
      ++ops;
    } else {
      if (size < kSharedMin) size = kSharedMin;
      void* p = Malloc(size);
      bench::Stamp(p, size);
      memcpy(static_cast<char*>(p) + 8, &size, sizeof size);
      ++ops;
      if (void* old = g_life_slots[rng.Below(kShared)].exchange(p, std::memory_order_acq_rel)) {
        FreeShared(old);
        ++ops;
      }
    }
  }
  for (uint64_t k = 0; k < kWindow; ++k) {
    if (window[k] != nullptr) {
      CheckedFree(window[k], window_size[k]);
      ++ops;
    }
  }
  g_life_ops.fetch_add(ops, std::memory_order_relaxed);
  return nullptr;
}

}  // namespace

int Lifetimes(Options& o) {
  static const char* const kKnown[] = {"seconds", "threads", "allocs", "min", "max", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const int threads = static_cast<int>(o.Size("threads", 8));
  g_life.allocs = o.Size("allocs", 20000);
  g_life.min = o.Size("min", 16);
  g_life.max = o.Size("max", 1024);
  g_life.seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 1 || g_life.min < 1 || g_life.min > g_life.max ||
      g_life.allocs < 1) {
    return 2;
  }
  g_life_slots = HarnessArray<std::atomic<void*>>(kShared);
  for (uint64_t k = 0; k < kShared; ++k) new (&g_life_slots[k]) std::atomic<void*>(nullptr);
  pthread_t* th = HarnessArray<pthread_t>(threads);
  uint64_t started = 0;
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  for (int i = 0; i < threads; ++i, ++started) {
    pthread_create(&th[i], nullptr, LifetimesWorker, nullptr);
  }
  for (int i = 0; bench::NowSeconds() < deadline; i = (i + 1) % threads, ++started) {
    pthread_join(th[i], nullptr);
    if (pthread_create(&th[i], nullptr, LifetimesWorker, nullptr) != 0) {
      fprintf(stderr, "lifetimes: pthread_create failed\n");
      return 1;
    }
  }
  for (int i = 0; i < threads; ++i) pthread_join(th[i], nullptr);
  const double elapsed = bench::NowSeconds() - start;
  uint64_t ops = g_life_ops.load();
  for (uint64_t k = 0; k < kShared; ++k) {
    if (void* p = g_life_slots[k].load()) {
      FreeShared(p);
      ++ops;
    }
  }
  char extra[128];
  snprintf(extra, sizeof extra, "threads=%d threads_started=%" PRIu64, threads, started);
  return Finish("lifetimes", static_cast<double>(ops), elapsed, extra);
}

}  // namespace workloads
