// Allocation workloads, one subcommand each, named for the behaviour they
// stress. Every subcommand prints a human-readable summary and one line
//
//   RESULT workload=<name> <metric>=<value> ... peak_rss_kb=<KiB> corrupt=<n>
//
// that tools/bench.sh parses. Throughput workloads report ops_per_sec, where
// an operation is one allocator call (malloc, calloc, realloc or free)
// unless the subcommand's description says otherwise.
//
//   workloads <subcommand> [key=value ...]
//   workloads help
//
// All allocation goes through the plain C symbols, so LD_PRELOAD selects the
// allocator under test. Blocks are stamped when allocated and checked before
// they are freed; a mismatch is counted in `corrupt` and makes the exit
// status 3.

#include "tools/workloads/commands.h"
#include "tools/workloads/harness.h"

namespace workloads {
namespace {
// ---------------------------------------------------------------------------
// producer-consumer: blocks allocated on one thread and freed on another.
// `pairs` producer threads each feed one consumer thread through a bounded
// single-producer/single-consumer ring. Producers allocate blocks of random
// size in [min, max] and write them; consumers check them and free them.
// An operation is one block passed (one malloc plus one free).

struct alignas(64) Ring {
  static constexpr size_t kCap = 1024;  // power of two
  alignas(64) std::atomic<uint64_t> head{0};  // next slot to read
  alignas(64) std::atomic<uint64_t> tail{0};  // next slot to write
  struct Msg {
    void* block;
    uint64_t size;
  };
  alignas(64) Msg slot[kCap];
};

struct alignas(64) PcArg {
  Ring* ring;
  uint64_t seed;
  int index;
  uint64_t min, max;
  uint64_t count;
};

void* Producer(void* a) {
  PcArg* arg = static_cast<PcArg*>(a);
  Ring* r = arg->ring;
  Rng rng(arg->seed, 2 * arg->index);
  uint64_t tail = 0, head_seen = 0, n = 0;
  unsigned spins = 0;
  while (!Stopped()) {
    while (tail - head_seen == Ring::kCap) {
      head_seen = r->head.load(std::memory_order_acquire);
      if (tail - head_seen == Ring::kCap) {
        if (Stopped()) goto done;
        Backoff(spins);
      }
    }
    {
      const size_t size = rng.Between(arg->min, arg->max);
      void* p = Malloc(size);
      bench::Stamp(p, size);
      r->slot[tail % Ring::kCap] = Ring::Msg{p, size};
      r->tail.store(++tail, std::memory_order_release);
      ++n;
    }
  }
done:
  // A null block tells the consumer to stop once it has drained the ring.
  while (tail - r->head.load(std::memory_order_acquire) == Ring::kCap) sched_yield();
  r->slot[tail % Ring::kCap] = Ring::Msg{nullptr, 0};
  r->tail.store(++tail, std::memory_order_release);
  arg->count = n;
  return nullptr;
}

void* Consumer(void* a) {
  PcArg* arg = static_cast<PcArg*>(a);
  Ring* r = arg->ring;
  uint64_t head = 0, tail_seen = 0, n = 0;
  unsigned spins = 0;
  for (;;) {
    while (head == tail_seen) {
      tail_seen = r->tail.load(std::memory_order_acquire);
      if (head == tail_seen) Backoff(spins);
    }
    const Ring::Msg m = r->slot[head % Ring::kCap];
    r->head.store(++head, std::memory_order_release);
    if (m.block == nullptr) break;
    CheckedFree(m.block, m.size);
    ++n;
  }
  arg->count = n;
  return nullptr;
}

int ProducerConsumer(Options& o) {
  static const char* const kKnown[] = {"seconds", "pairs", "min", "max", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const int pairs = static_cast<int>(o.Size("pairs", 1));
  const uint64_t min = o.Size("min", 16), max = o.Size("max", 512);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || pairs < 1 || min < 1 || min > max) return 2;

  Ring* rings = HarnessArray<Ring>(pairs);
  for (int i = 0; i < pairs; ++i) new (&rings[i]) Ring();
  PcArg* args = HarnessArray<PcArg>(2 * pairs);
  for (int i = 0; i < 2 * pairs; ++i) args[i] = PcArg{&rings[i / 2], seed, i / 2, min, max, 0};

  pthread_t* th = HarnessArray<pthread_t>(2 * pairs);
  const double start = bench::NowSeconds();
  for (int i = 0; i < 2 * pairs; ++i) {
    pthread_create(&th[i], nullptr, i % 2 == 0 ? Producer : Consumer, &args[i]);
  }
  bench::SleepSeconds(seconds);
  g_stop.store(true);
  for (int i = 0; i < 2 * pairs; ++i) pthread_join(th[i], nullptr);
  const double elapsed = bench::NowSeconds() - start;

  uint64_t produced = 0, consumed = 0;
  for (int i = 0; i < 2 * pairs; ++i) (i % 2 == 0 ? produced : consumed) += args[i].count;
  if (produced != consumed) {
    fprintf(stderr, "producer-consumer: %" PRIu64 " produced but %" PRIu64 " consumed\n", produced,
            consumed);
    return 1;
  }
  char extra[128];
  snprintf(extra, sizeof extra, "pairs=%d", pairs);
  return Finish("producer-consumer", static_cast<double>(consumed), elapsed, extra);
}

// ---------------------------------------------------------------------------
// false-sharing: threads own a few small objects each and write them hard.
// The main thread allocates every thread's initial objects interleaved, so
// they start out neighbours in memory (passive false sharing); each
// iteration a thread frees one of its objects and allocates a replacement
// (active false sharing if the allocator hands threads blocks on shared cache
// lines), then performs `writes` increments of the objects' first words,
// cycling over its objects. An operation is one such iteration (one free,
// one malloc, `writes` writes). Each object's counter is checked against the
// thread's own tally before the object is freed.

struct alignas(64) FsArg {
  int index;
  uint64_t seed;
  int live;
  uint64_t min, max;
  int writes;
  uint64_t** objs;
  uint64_t* expect;
  uint64_t iterations;
};

inline uint64_t* NewCounter(Rng& rng, uint64_t min, uint64_t max) {
  auto* c = static_cast<uint64_t*>(Malloc(rng.Between(min, max)));
  *c = 0;
  return c;
}

void* FalseSharingWorker(void* a) {
  FsArg* arg = static_cast<FsArg*>(a);
  Rng rng(arg->seed, arg->index);
  uint64_t** objs = arg->objs;
  uint64_t* expect = arg->expect;
  const int live = arg->live;
  const int writes = arg->writes;
  uint64_t it = 0;
  while (!Stopped()) {
    for (int k = 0; k < 64; ++k) {
      const int victim = static_cast<int>(rng.Below(live));
      if (*objs[victim] != expect[victim]) g_corrupt.fetch_add(1, std::memory_order_relaxed);
      free(objs[victim]);
      objs[victim] = NewCounter(rng, arg->min, arg->max);
      expect[victim] = 0;
      for (int w = 0, j = 0; w < writes; ++w) {
        volatile uint64_t* c = objs[j];
        *c = *c + 1;
        expect[j]++;
        if (++j == live) j = 0;
      }
    }
    it += 64;
  }
  arg->iterations = it;
  return nullptr;
}

int FalseSharing(Options& o) {
  static const char* const kKnown[] = {"seconds", "threads", "live",  "min",
                                       "max",     "writes",  "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const int threads = static_cast<int>(o.Size("threads", 2));
  const int live = static_cast<int>(o.Size("live", 8));
  const uint64_t min = o.Size("min", 8), max = o.Size("max", 64);
  const int writes = static_cast<int>(o.Size("writes", 256));
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 1 || live < 1 || min < 8 || min > max) return 2;

  FsArg* args = HarnessArray<FsArg>(threads);
  Rng rng(seed, 1000);
  for (int t = 0; t < threads; ++t) {
    args[t] = FsArg{t, seed, live, min, max, writes, HarnessArray<uint64_t*>(live),
                    HarnessArray<uint64_t>(live), 0};
  }
  for (int i = 0; i < live; ++i) {
    for (int t = 0; t < threads; ++t) args[t].objs[i] = NewCounter(rng, min, max);
  }
  const double elapsed = RunTimed(threads, args, FalseSharingWorker, seconds);
  uint64_t iterations = 0;
  for (int t = 0; t < threads; ++t) {
    iterations += args[t].iterations;
    for (int i = 0; i < live; ++i) {
      if (*args[t].objs[i] != args[t].expect[i]) g_corrupt.fetch_add(1);
      free(args[t].objs[i]);
    }
  }
  char extra[128];
  snprintf(extra, sizeof extra, "threads=%d writes_per_op=%d", threads, writes);
  return Finish("false-sharing", static_cast<double>(iterations), elapsed, extra);
}

// ---------------------------------------------------------------------------
// thread-churn: many short-lived threads. The main thread keeps `threads`
// workers in flight, replacing each as it ends. A worker allocates `allocs`
// blocks of random size in [min, max] (its pointer array too comes from
// malloc), frees them in random order except one in `keep`, and passes those
// survivors on: it swaps its batch with the one the previous worker left and
// frees that. So some blocks outlive the thread that allocated them and are
// freed by a thread that never saw their owner alive.

struct Batch {
  void** blocks;
  uint32_t* sizes;
  size_t n;
};
std::atomic<Batch*> g_handoff{nullptr};

struct ChurnConfig {
  uint64_t allocs, min, max, keep, seed;
};
ChurnConfig g_churn;
std::atomic<uint64_t> g_churn_ops{0};
std::atomic<uint64_t> g_churn_seq{0};

void FreeBatch(Batch* b, uint64_t* ops) {
  const size_t n = b->n;
  for (size_t i = 0; i < n; ++i) CheckedFree(b->blocks[i], b->sizes[i]);
  free(b->blocks);
  free(b->sizes);
  free(b);
  *ops += n + 3;
}

void* ChurnWorker(void*) {
  const uint64_t n = g_churn.allocs;
  Rng rng(g_churn.seed, g_churn_seq.fetch_add(1, std::memory_order_relaxed));
  uint64_t ops = 0;
  auto* blocks = static_cast<void**>(Malloc(sizeof(void*) * n));
  auto* sizes = static_cast<uint32_t*>(Malloc(sizeof(uint32_t) * n));
  ops += 2;
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t size = static_cast<uint32_t>(rng.Between(g_churn.min, g_churn.max));
    blocks[i] = Malloc(size);
    sizes[i] = size;
    bench::Stamp(blocks[i], size);
  }
  ops += n;
  // Survivors: every keep-th block moves to the batch.
  auto* batch = static_cast<Batch*>(Malloc(sizeof(Batch)));
  const size_t nkeep = g_churn.keep ? n / g_churn.keep : 0;
  batch->blocks = static_cast<void**>(Malloc(sizeof(void*) * (nkeep + 1)));
  batch->sizes = static_cast<uint32_t*>(Malloc(sizeof(uint32_t) * (nkeep + 1)));
  batch->n = 0;
  ops += 3;
  // Random-order frees: Fisher-Yates over the array, then walk it.
  for (uint64_t i = n; i > 1; --i) {
    const uint64_t j = rng.Below(i);
    void* tp = blocks[i - 1];
    blocks[i - 1] = blocks[j];
    blocks[j] = tp;
    const uint32_t ts = sizes[i - 1];
    sizes[i - 1] = sizes[j];
    sizes[j] = ts;
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (batch->n < nkeep && i % g_churn.keep == 0) {
      batch->blocks[batch->n] = blocks[i];
      batch->sizes[batch->n] = sizes[i];
      batch->n++;
    } else {
      CheckedFree(blocks[i], sizes[i]);
      ++ops;
    }
  }
  free(blocks);
  free(sizes);
  ops += 2;
  Batch* old = g_handoff.exchange(batch, std::memory_order_acq_rel);
  if (old != nullptr) FreeBatch(old, &ops);
  g_churn_ops.fetch_add(ops, std::memory_order_relaxed);
  return nullptr;
}

int ThreadChurn(Options& o) {
  static const char* const kKnown[] = {"seconds", "threads", "allocs", "min",
                                       "max",     "keep",    "seed",   nullptr};
  const double seconds = o.Double("seconds", 2);
  const int threads = static_cast<int>(o.Size("threads", 4));
  g_churn.allocs = o.Size("allocs", 1000);
  g_churn.min = o.Size("min", 16);
  g_churn.max = o.Size("max", 1024);
  g_churn.keep = o.Size("keep", 8);
  g_churn.seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 1 || g_churn.min < 1 || g_churn.min > g_churn.max ||
      g_churn.allocs < 1) {
    return 2;
  }
  pthread_t* th = HarnessArray<pthread_t>(threads);
  uint64_t started = 0;
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  for (int i = 0; i < threads; ++i, ++started) pthread_create(&th[i], nullptr, ChurnWorker, nullptr);
  for (int i = 0; bench::NowSeconds() < deadline; i = (i + 1) % threads, ++started) {
    pthread_join(th[i], nullptr);
    if (pthread_create(&th[i], nullptr, ChurnWorker, nullptr) != 0) {
      fprintf(stderr, "thread-churn: pthread_create failed\n");
      return 1;
    }
  }
  for (int i = 0; i < threads; ++i) pthread_join(th[i], nullptr);
  const double elapsed = bench::NowSeconds() - start;
  uint64_t ops = g_churn_ops.load();
  if (Batch* last = g_handoff.exchange(nullptr)) FreeBatch(last, &ops);
  char extra[160];
  snprintf(extra, sizeof extra, "threads_per_sec=%.0f threads_started=%" PRIu64,
           static_cast<double>(started) / elapsed, started);
  return Finish("thread-churn", static_cast<double>(ops), elapsed, extra);
}

// ---------------------------------------------------------------------------
// size-mix: one thread, many sizes. A working set of `live` blocks is
// churned: each step either replaces a random long-lived block, or (half the
// time) allocates a burst of 1..8 short-lived temporaries and frees them in
// reverse order, as a function's scratch objects would be. Sizes follow a
// fixed mix: 60% 1..128 B, 25% 129..1024 B, 12% 1..16 KiB, 3% 16..256 KiB;
// one allocation in 16 uses calloc.

inline size_t MixedSize(Rng& rng) {
  const uint64_t r = rng.Below(100);
  if (r < 60) return rng.Between(1, 128);
  if (r < 85) return rng.Between(129, 1024);
  if (r < 97) return rng.Between(1025, 16 << 10);
  return rng.Between((16 << 10) + 1, 256 << 10);
}

inline void* MixedAlloc(Rng& rng, size_t size) {
  void* p;
  if (rng.Below(16) == 0) {
    p = calloc(1, size);
    if (p == nullptr) abort();
    if (size > 0 && static_cast<unsigned char*>(p)[size - 1] != 0) {
      g_corrupt.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    p = Malloc(size);
  }
  bench::Stamp(p, size);
  return p;
}

int SizeMix(Options& o) {
  static const char* const kKnown[] = {"seconds", "live", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const uint64_t live = o.Size("live", 4096);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || live < 1) return 2;

  Rng rng(seed, 0);
  void** blocks = HarnessArray<void*>(live);
  uint32_t* sizes = HarnessArray<uint32_t>(live);
  for (uint64_t i = 0; i < live; ++i) {
    sizes[i] = static_cast<uint32_t>(MixedSize(rng));
    blocks[i] = MixedAlloc(rng, sizes[i]);
  }
  uint64_t ops = 0;
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  void* tmp[8];
  uint32_t tmp_size[8];
  do {
    for (int k = 0; k < 256; ++k) {
      if (rng.Below(2) == 0) {
        const uint64_t v = rng.Below(live);
        CheckedFree(blocks[v], sizes[v]);
        sizes[v] = static_cast<uint32_t>(MixedSize(rng));
        blocks[v] = MixedAlloc(rng, sizes[v]);
        ops += 2;
      } else {
        const int burst = 1 + static_cast<int>(rng.Below(8));
        for (int b = 0; b < burst; ++b) {
          tmp_size[b] = static_cast<uint32_t>(MixedSize(rng));
          tmp[b] = MixedAlloc(rng, tmp_size[b]);
        }
        for (int b = burst - 1; b >= 0; --b) CheckedFree(tmp[b], tmp_size[b]);
        ops += 2 * burst;
      }
    }
  } while (bench::NowSeconds() < deadline);
  const double elapsed = bench::NowSeconds() - start;
  for (uint64_t i = 0; i < live; ++i) CheckedFree(blocks[i], sizes[i]);
  return Finish("size-mix", static_cast<double>(ops), elapsed, "threads=1");
}

// ---------------------------------------------------------------------------
// realloc-growth: `buffers` growing buffers on one thread. Half behave like
// strings: each append of 1..32 bytes reallocs to the exact new length, up
// to a random final length of 256 B..64 KiB. Half behave like vectors: they
// append 8..64-byte elements and realloc to twice the capacity when full, up
// to a random final length of 4 KiB..4 MiB. A buffer that reaches its final
// length is freed and a new one started. Appended bytes are written.

struct Growable {
  char* data;
  size_t len, cap, limit;
  bool vector;
};

void StartGrowable(Growable& g, Rng& rng, bool vector) {
  g.vector = vector;
  g.len = 0;
  g.cap = vector ? 16 : 1;
  g.limit = vector ? rng.LogUniform(4 << 10, 4 << 20) : rng.LogUniform(256, 64 << 10);
  g.data = static_cast<char*>(Malloc(g.cap));
}

int ReallocGrowth(Options& o) {
  static const char* const kKnown[] = {"seconds", "buffers", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const uint64_t nbuf = o.Size("buffers", 64);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || nbuf < 1) return 2;

  Rng rng(seed, 0);
  Growable* bufs = HarnessArray<Growable>(nbuf);
  for (uint64_t i = 0; i < nbuf; ++i) StartGrowable(bufs[i], rng, i % 2 == 1);
  uint64_t ops = nbuf, appends = 0;
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  do {
    for (int k = 0; k < 256; ++k) {
      Growable& g = bufs[rng.Below(nbuf)];
      const size_t add = g.vector ? rng.Between(8, 64) : rng.Between(1, 32);
      const size_t need = g.len + add;
      if (need > g.cap) {
        const size_t cap = g.vector ? (g.cap * 2 >= need ? g.cap * 2 : need) : need;
        char* p = static_cast<char*>(realloc(g.data, cap));
        if (p == nullptr) abort();
        // The bytes written so far must have moved with the buffer.
        if (g.len > 0 && p[g.len - 1] != static_cast<char>((g.len - 1) * 31 + 7)) {
          g_corrupt.fetch_add(1, std::memory_order_relaxed);
        }
        g.data = p;
        g.cap = cap;
        ++ops;
      }
      for (size_t i = g.len; i < need; ++i) g.data[i] = static_cast<char>(i * 31 + 7);
      g.len = need;
      ++appends;
      if (g.len >= g.limit) {
        free(g.data);
        StartGrowable(g, rng, g.vector);
        ops += 2;
      }
    }
  } while (bench::NowSeconds() < deadline);
  const double elapsed = bench::NowSeconds() - start;
  for (uint64_t i = 0; i < nbuf; ++i) free(bufs[i].data);
  char extra[96];
  snprintf(extra, sizeof extra, "appends_per_sec=%.0f", static_cast<double>(appends) / elapsed);
  return Finish("realloc-growth", static_cast<double>(ops), elapsed, extra);
}

// ---------------------------------------------------------------------------
// large-blocks: blocks of 64 KiB to 32 MiB (log-uniform). Each thread keeps
// `live` blocks and replaces a random one per operation, writing one byte in
// every page of the new block (so the cost of fresh pages, and of memory
// the allocator unmaps and maps again, is counted). An operation is one
// replacement (one free plus one malloc).

struct alignas(64) LargeArg {
  int index;
  uint64_t seed, min, max;
  int live;
  uint64_t replacements;
};

void* LargeWorker(void* a) {
  LargeArg* arg = static_cast<LargeArg*>(a);
  Rng rng(arg->seed, arg->index);
  void* blocks[64];
  size_t sizes[64];
  for (int i = 0; i < arg->live; ++i) {
    sizes[i] = rng.LogUniform(arg->min, arg->max);
    blocks[i] = Malloc(sizes[i]);
    bench::TouchPages(blocks[i], sizes[i]);
  }
  uint64_t n = 0;
  while (!Stopped()) {
    const int v = static_cast<int>(rng.Below(arg->live));
    CheckedFree(blocks[v], sizes[v]);
    sizes[v] = rng.LogUniform(arg->min, arg->max);
    blocks[v] = Malloc(sizes[v]);
    bench::TouchPages(blocks[v], sizes[v]);
    ++n;
  }
  for (int i = 0; i < arg->live; ++i) CheckedFree(blocks[i], sizes[i]);
  arg->replacements = n;
  return nullptr;
}

int LargeBlocks(Options& o) {
  static const char* const kKnown[] = {"seconds", "threads", "live", "min", "max", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const int threads = static_cast<int>(o.Size("threads", 2));
  const int live = static_cast<int>(o.Size("live", 8));
  const uint64_t min = o.Size("min", 64 << 10), max = o.Size("max", 32 << 20);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 1 || live < 1 || live > 64 || min < 1 || min > max) {
    return 2;
  }
  LargeArg* args = HarnessArray<LargeArg>(threads);
  for (int t = 0; t < threads; ++t) args[t] = LargeArg{t, seed, min, max, live, 0};
  const double elapsed = RunTimed(threads, args, LargeWorker, seconds);
  uint64_t n = 0;
  for (int t = 0; t < threads; ++t) n += args[t].replacements;
  char extra[64];
  snprintf(extra, sizeof extra, "threads=%d", threads);
  return Finish("large-blocks", static_cast<double>(n), elapsed, extra);
}

// ---------------------------------------------------------------------------
// memory-return: `threads` threads allocate `total` bytes together in blocks
// of min..max bytes (log-uniform) and write them; then every block is freed,
// half by the thread that allocated it and half by another thread. The
// resident set is sampled:
//   rss_after_free_kb   right after the last free, worker threads alive;
//   rss_idle_kb         after the workers have continued for `idle` seconds
//                       at low load (a few hundred small malloc/free pairs
//                       every millisecond), still alive;
//   rss_after_exit_kb   after the workers have exited.
// Reported times: alloc_s and free_s (slowest thread), and seconds (both).

struct alignas(64) ReturnArg {
  int index;
  uint64_t seed, min, max, bytes;
  void** blocks;
  uint32_t* sizes;
  uint64_t count, capacity;
  double alloc_s, free_s;
};

struct Barrier {
  std::atomic<int> count{0};
  std::atomic<int> generation{0};
  int n = 0;
  void Wait() {
    const int gen = generation.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
      count.store(0, std::memory_order_relaxed);
      generation.fetch_add(1, std::memory_order_acq_rel);
    } else {
      while (generation.load(std::memory_order_acquire) == gen) sched_yield();
    }
  }
};

Barrier g_barrier;
ReturnArg* g_return_args;
int g_return_threads;
double g_idle_seconds;

void* ReturnWorker(void* a) {
  ReturnArg* arg = static_cast<ReturnArg*>(a);
  Rng rng(arg->seed, arg->index);
  g_barrier.Wait();  // 1: start allocating together
  double t0 = bench::NowSeconds();
  uint64_t bytes = 0;
  while (bytes < arg->bytes && arg->count < arg->capacity) {
    const uint32_t size = static_cast<uint32_t>(rng.LogUniform(arg->min, arg->max));
    void* p = Malloc(size);
    bench::Stamp(p, size);
    arg->blocks[arg->count] = p;
    arg->sizes[arg->count] = size;
    arg->count++;
    bytes += size;
  }
  arg->alloc_s = bench::NowSeconds() - t0;
  g_barrier.Wait();  // 2: everything allocated
  t0 = bench::NowSeconds();
  // Even slots of my own list, odd slots of the next thread's list; walked
  // with a stride so neighbouring blocks are not freed one after another.
  const int n = g_return_threads;
  for (int part = 0; part < 2; ++part) {
    ReturnArg* src = part == 0 ? arg : &g_return_args[(arg->index + 1) % n];
    const uint64_t count = src->count;
    const uint64_t stride = 4099;  // prime
    for (uint64_t start = part; start < stride * 2 && start < count; start += 2) {
      for (uint64_t i = start; i < count; i += stride * 2) CheckedFree(src->blocks[i], src->sizes[i]);
    }
  }
  arg->free_s = bench::NowSeconds() - t0;
  g_barrier.Wait();  // 3: everything freed; main samples RSS
  g_barrier.Wait();  // 4: main has sampled
  const double idle_end = bench::NowSeconds() + g_idle_seconds;
  while (bench::NowSeconds() < idle_end) {
    void* tmp[256];
    for (int i = 0; i < 256; ++i) tmp[i] = Malloc(rng.Between(16, 256));
    for (int i = 0; i < 256; ++i) free(tmp[i]);
    bench::SleepSeconds(0.001);
  }
  g_barrier.Wait();  // 5: idle phase over; main samples RSS
  g_barrier.Wait();  // 6: main has sampled; exit
  return nullptr;
}

int MemoryReturn(Options& o) {
  static const char* const kKnown[] = {"total", "threads", "min", "max", "idle", "seed", nullptr};
  const uint64_t total = o.Size("total", 1ull << 30);
  const int threads = static_cast<int>(o.Size("threads", 2));
  const uint64_t min = o.Size("min", 16), max = o.Size("max", 4096);
  g_idle_seconds = o.Double("idle", 0.5);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 1 || min < 1 || min > max || max > UINT32_MAX) return 2;

  const long rss_before = bench::CurrentRssKb();
  g_return_threads = threads;
  g_return_args = HarnessArray<ReturnArg>(threads);
  const uint64_t per_thread = total / threads;
  const uint64_t capacity = per_thread / min + 1;
  for (int t = 0; t < threads; ++t) {
    g_return_args[t] = ReturnArg{t,
                                 seed,
                                 min,
                                 max,
                                 per_thread,
                                 HarnessArray<void*>(capacity),
                                 HarnessArray<uint32_t>(capacity),
                                 0,
                                 capacity,
                                 0,
                                 0};
  }
  g_barrier.n = threads + 1;
  pthread_t* th = HarnessArray<pthread_t>(threads);
  for (int t = 0; t < threads; ++t) pthread_create(&th[t], nullptr, ReturnWorker, &g_return_args[t]);
  g_barrier.Wait();  // 1
  g_barrier.Wait();  // 2
  const long rss_full = bench::CurrentRssKb();
  uint64_t blocks = 0;
  for (int t = 0; t < threads; ++t) blocks += g_return_args[t].count;
  // Harness arrays are mmap'ed; their pages are excluded from the samples
  // below by subtracting them (they stay resident until unmapped).
  long harness_kb = 0;
  for (int t = 0; t < threads; ++t) {
    harness_kb += static_cast<long>((g_return_args[t].count * (sizeof(void*) + sizeof(uint32_t)) + 4095) / 4096 * 4);
  }
  g_barrier.Wait();  // 3
  const long rss_after_free = bench::CurrentRssKb() - harness_kb;
  g_barrier.Wait();  // 4
  g_barrier.Wait();  // 5
  const long rss_idle = bench::CurrentRssKb() - harness_kb;
  g_barrier.Wait();  // 6
  for (int t = 0; t < threads; ++t) pthread_join(th[t], nullptr);
  for (int t = 0; t < threads; ++t) {
    FreeHarnessArray(g_return_args[t].blocks, capacity);
    FreeHarnessArray(g_return_args[t].sizes, capacity);
  }
  const long rss_after_exit = bench::CurrentRssKb();

  double alloc_s = 0, free_s = 0;
  for (int t = 0; t < threads; ++t) {
    if (g_return_args[t].alloc_s > alloc_s) alloc_s = g_return_args[t].alloc_s;
    if (g_return_args[t].free_s > free_s) free_s = g_return_args[t].free_s;
  }
  const long peak = bench::PeakRssKb();
  const uint64_t corrupt = g_corrupt.load();
  printf("memory-return: %d threads allocated %.0f MiB in %" PRIu64
         " blocks of %" PRIu64 "..%" PRIu64 " B (%.3f s), freed them (%.3f s)\n",
         threads, static_cast<double>(total) / (1 << 20), blocks, min, max, alloc_s, free_s);
  printf("  RSS KiB: before %ld, all allocated %ld, after free %ld, after %.2f s idle %ld, "
         "after thread exit %ld; peak %ld\n",
         rss_before, rss_full, rss_after_free, g_idle_seconds, rss_idle, rss_after_exit, peak);
  printf("RESULT workload=memory-return rss_after_free_kb=%ld rss_idle_kb=%ld rss_after_exit_kb=%ld "
         "rss_before_kb=%ld seconds=%.4f alloc_s=%.4f free_s=%.4f blocks=%" PRIu64
         " peak_rss_kb=%ld corrupt=%" PRIu64 "\n",
         rss_after_free, rss_idle, rss_after_exit, rss_before, alloc_s + free_s, alloc_s, free_s,
         blocks, peak, corrupt);
  return corrupt ? 3 : 0;
}

// ---------------------------------------------------------------------------

struct Command {
  const char* name;
  int (*run)(Options&);
  const char* help;
};

const Command kCommands[] = {
    {"producer-consumer", ProducerConsumer,
     "seconds=2 pairs=1 min=16 max=512: blocks malloc'ed on one thread, freed on another"},
    {"false-sharing", FalseSharing,
     "seconds=2 threads=2 live=8 min=8 max=64 writes=256: threads write their small objects hard"},
    {"thread-churn", ThreadChurn,
     "seconds=2 threads=4 allocs=1000 min=16 max=1024 keep=8: short-lived threads, survivors "
     "freed by later threads"},
    {"size-mix", SizeMix, "seconds=2 live=4096: one thread, sizes 1 B..256 KiB, bursts of temporaries"},
    {"realloc-growth", ReallocGrowth, "seconds=2 buffers=64: strings and vectors growing by realloc"},
    {"large-blocks", LargeBlocks,
     "seconds=2 threads=2 live=8 min=64K max=32M: large blocks, every page written"},
    {"memory-return", MemoryReturn,
     "total=1G threads=2 min=16 max=4096 idle=0.5: allocate a lot, free it all, sample RSS"},
    {"batch-handoff", BatchHandoff,
     "seconds=2 threads=4 batch=4096 size=64 ring=0: producers hand batches of blocks (and the "
     "32 KiB array holding them) to consumers, which free them (ring=1: every thread does both)"},
    {"lifetimes", Lifetimes,
     "seconds=2 threads=8 allocs=20000 min=16 max=1024: threads recreated over and over, blocks "
     "freed at once, after a while, or by a later thread"},
    {"small-churn", SmallChurn, "seconds=2 live=10000 min=8 max=256: one thread replaces random "
     "small blocks of a working set"},
    {"trees", Trees, "seconds=2 depth=12 node=32: one thread builds, walks and frees binary trees"},
    {"mixed-loop", MixedLoop,
     "seconds=2 threads=1 min=16 max=1024: per thread, malloc 1..16 blocks of mixed sizes, free "
     "them"},
    {"pair", Pair, "seconds=1 size=64: malloc + free of one block, ns per pair"},
};

int Help(FILE* out) {
  fprintf(out, "usage: workloads <subcommand> [key=value ...]   (defaults shown)\n");
  for (const Command& c : kCommands) fprintf(out, "  %-18s %s\n", c.name, c.help);
  fprintf(out, "every option also accepts seed=N; sizes take K/M/G suffixes\n");
  return out == stdout ? 0 : 2;
}

}  // namespace
}  // namespace workloads

int main(int argc, char** argv) {
  using namespace workloads;
  if (argc < 2) return Help(stderr);
  if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) return Help(stdout);
  for (const Command& c : kCommands) {
    if (strcmp(argv[1], c.name) == 0) {
      Options o;
      o.argc = argc - 2;
      o.argv = argv + 2;
      const int rc = c.run(o);
      if (rc == 2) fprintf(stderr, "usage: workloads %s %s\n", c.name, c.help);
      return rc;
    }
  }
  fprintf(stderr, "unknown workload: %s\n", argv[1]);
  return Help(stderr);
}
