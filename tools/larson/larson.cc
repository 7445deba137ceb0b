// Larson & Krishnan (1998) server workload, written from the paper's
// description.
//
//   larson <seconds> <min> <max> <chunks-per-thread> <rounds> <seed> <threads>
//
// Each of <threads> lineages owns an array of <chunks-per-thread> blocks of
// random sizes in [min, max]. The array is filled by the main thread before
// timing starts. A worker thread repeatedly picks a random slot, frees the
// block there and allocates a new block of random size in its place, writing
// to it. After <rounds> x <chunks-per-thread> replacements the worker starts a
// successor thread that inherits the array, and exits; so most blocks are
// freed by a thread that did not allocate them, and threads keep being born
// and dying while the heap stays populated. After <seconds> the workers are
// told to stop; every thread is joined, the remaining blocks are freed by the
// main thread, and throughput (replacements per second: one free plus one
// allocation each) is printed.
//
// Every block carries a tag written at allocation and checked before it is
// freed, so a block handed out twice or overwritten is reported (exit 3).
//
// Built twice: `larson` uses malloc/free, `larson_cxx` (LARSON_CXX) uses
// operator new[] and sized operator delete[]. Both call the allocator through
// the ordinary symbols, so LD_PRELOAD selects the allocator under test.

#include <pthread.h>

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "tools/common/bench_common.h"

namespace {

#ifdef LARSON_CXX
constexpr const char* kName = "larson_cxx";
inline void* Allocate(size_t n) { return ::operator new[](n); }
inline void Release(void* p, size_t n) { ::operator delete[](p, n); }
#else
constexpr const char* kName = "larson";
inline void* Allocate(size_t n) { return malloc(n); }
inline void Release(void* p, size_t) { free(p); }
#endif

struct Config {
  double seconds = 0;
  uint64_t min_size = 0;
  uint64_t max_size = 0;
  uint64_t chunks = 0;
  uint64_t rounds = 0;
  uint64_t seed = 0;
  int threads = 0;
};

// One lineage of threads. Only the thread currently running the lineage
// touches it (handover happens through pthread_create, which orders memory).
struct alignas(64) Lineage {
  int index = 0;
  void** blocks = nullptr;
  uint32_t* sizes = nullptr;
  bench::Rng rng;

  // The thread that handed this lineage over; its successor joins it.
  pthread_t predecessor{};
  bool has_predecessor = false;

  uint64_t replacements = 0;
  uint64_t threads_started = 0;
  uint64_t corrupt = 0;
  bool spawn_failed = false;

  // Set by the lineage's last thread, which the main thread then joins.
  pthread_t last{};
  std::atomic<bool> finished{false};
};

Config g_cfg;
std::atomic<bool> g_stop{false};

inline uint32_t RandomSize(bench::Rng& rng) {
  return static_cast<uint32_t>(rng.Between(g_cfg.min_size, g_cfg.max_size));
}

inline void* NewBlock(uint32_t size) {
  void* p = Allocate(size);
  if (p == nullptr) {
    fprintf(stderr, "%s: allocation of %u bytes failed\n", kName, size);
    abort();
  }
  bench::Stamp(p, size);
  return p;
}

void* Worker(void* arg) {
  Lineage* l = static_cast<Lineage*>(arg);
  if (l->has_predecessor) pthread_join(l->predecessor, nullptr);

  void** blocks = l->blocks;
  uint32_t* sizes = l->sizes;
  bench::Rng rng = l->rng;
  const uint64_t chunks = g_cfg.chunks;
  const uint64_t total = g_cfg.rounds * chunks;
  uint64_t done = 0;
  uint64_t corrupt = 0;

  for (; done < total; ++done) {
    if (g_stop.load(std::memory_order_relaxed)) break;
    const uint64_t victim = rng.Below(chunks);
    if (!bench::Check(blocks[victim], sizes[victim])) ++corrupt;
    Release(blocks[victim], sizes[victim]);
    const uint32_t size = RandomSize(rng);
    blocks[victim] = NewBlock(size);
    sizes[victim] = size;
  }

  l->rng = rng;
  l->replacements += done;
  l->corrupt += corrupt;

  if (!g_stop.load(std::memory_order_relaxed)) {
    // Hand the array to a successor; this thread must not touch `l` after
    // pthread_create returns.
    l->predecessor = pthread_self();
    l->has_predecessor = true;
    l->threads_started++;
    pthread_t next;
    if (pthread_create(&next, nullptr, Worker, l) == 0) return nullptr;
    l->threads_started--;
    l->has_predecessor = false;
    l->spawn_failed = true;
    g_stop.store(true, std::memory_order_relaxed);
  }
  l->last = pthread_self();
  l->finished.store(true, std::memory_order_release);
  return nullptr;
}

bool ParseU64(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

int Usage() {
  fprintf(stderr,
          "usage: %s <seconds> <min> <max> <chunks-per-thread> <rounds> <seed> <threads>\n"
          "  e.g. %s 5 8 1000 5000 100 4141 2\n",
          kName, kName);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) return Usage();
  char* end = nullptr;
  g_cfg.seconds = strtod(argv[1], &end);
  uint64_t threads = 0;
  if (*end != '\0' || !(g_cfg.seconds > 0) || !ParseU64(argv[2], &g_cfg.min_size) ||
      !ParseU64(argv[3], &g_cfg.max_size) || !ParseU64(argv[4], &g_cfg.chunks) ||
      !ParseU64(argv[5], &g_cfg.rounds) || !ParseU64(argv[6], &g_cfg.seed) ||
      !ParseU64(argv[7], &threads)) {
    return Usage();
  }
  if (g_cfg.min_size == 0 || g_cfg.min_size > g_cfg.max_size || g_cfg.max_size > UINT32_MAX ||
      g_cfg.chunks == 0 || g_cfg.rounds == 0 || threads == 0 || threads > 4096) {
    fprintf(stderr, "%s: need 0 < min <= max < 4 GiB, chunks > 0, rounds > 0, threads in 1..4096\n",
            kName);
    return 2;
  }
  g_cfg.threads = static_cast<int>(threads);

  printf("%s: %d threads, sizes %" PRIu64 "..%" PRIu64 " bytes, %" PRIu64
         " blocks per thread, %" PRIu64 " rounds, seed %" PRIu64 ", %.3g s\n",
         kName, g_cfg.threads, g_cfg.min_size, g_cfg.max_size, g_cfg.chunks, g_cfg.rounds,
         g_cfg.seed, g_cfg.seconds);
  fflush(stdout);

  // Harness arrays come from the allocator under test like everything else;
  // they are allocated once, before timing.
  auto* lineages = static_cast<Lineage*>(aligned_alloc(64, sizeof(Lineage) * g_cfg.threads));
  for (int t = 0; t < g_cfg.threads; ++t) {
    Lineage* l = new (&lineages[t]) Lineage();
    l->index = t;
    l->rng = bench::Rng(g_cfg.seed, static_cast<uint64_t>(t));
    l->blocks = static_cast<void**>(malloc(sizeof(void*) * g_cfg.chunks));
    l->sizes = static_cast<uint32_t*>(malloc(sizeof(uint32_t) * g_cfg.chunks));
    if (l->blocks == nullptr || l->sizes == nullptr) {
      fprintf(stderr, "%s: out of memory for the block arrays\n", kName);
      return 1;
    }
  }
  // Initial fill by the main thread, interleaved across lineages so that
  // neighbouring blocks belong to different threads.
  for (uint64_t i = 0; i < g_cfg.chunks; ++i) {
    for (int t = 0; t < g_cfg.threads; ++t) {
      Lineage* l = &lineages[t];
      const uint32_t size = RandomSize(l->rng);
      l->blocks[i] = NewBlock(size);
      l->sizes[i] = size;
    }
  }

  const double start = bench::NowSeconds();
  for (int t = 0; t < g_cfg.threads; ++t) {
    Lineage* l = &lineages[t];
    l->threads_started = 1;
    pthread_t th;
    if (pthread_create(&th, nullptr, Worker, l) != 0) {
      fprintf(stderr, "%s: pthread_create failed\n", kName);
      return 1;
    }
  }

  bench::SleepSeconds(g_cfg.seconds);
  g_stop.store(true, std::memory_order_relaxed);

  for (int t = 0; t < g_cfg.threads; ++t) {
    while (!lineages[t].finished.load(std::memory_order_acquire)) bench::SleepSeconds(0.0005);
  }
  const double elapsed = bench::NowSeconds() - start;
  for (int t = 0; t < g_cfg.threads; ++t) pthread_join(lineages[t].last, nullptr);

  uint64_t replacements = 0, threads_started = 0, corrupt = 0;
  bool spawn_failed = false;
  for (int t = 0; t < g_cfg.threads; ++t) {
    Lineage* l = &lineages[t];
    replacements += l->replacements;
    threads_started += l->threads_started;
    corrupt += l->corrupt;
    spawn_failed |= l->spawn_failed;
  }
  const long peak_kb = bench::PeakRssKb();

  // Free everything that is left, from the main thread.
  for (int t = 0; t < g_cfg.threads; ++t) {
    Lineage* l = &lineages[t];
    for (uint64_t i = 0; i < g_cfg.chunks; ++i) {
      if (!bench::Check(l->blocks[i], l->sizes[i])) ++corrupt;
      Release(l->blocks[i], l->sizes[i]);
    }
    free(l->blocks);
    free(l->sizes);
    l->~Lineage();
  }
  free(lineages);

  const double throughput = static_cast<double>(replacements) / elapsed;
  printf("Throughput = %.0f operations per second\n", throughput);
  printf("  %" PRIu64 " replacements (free + allocate) in %.3f s, %" PRIu64
         " threads started, peak RSS %ld KiB, relative time %.3f s per 1M operations\n",
         replacements, elapsed, threads_started, peak_kb,
         replacements ? elapsed * 1e6 / static_cast<double>(replacements) : 0.0);
  printf("RESULT workload=%s ops_per_sec=%.0f ops=%" PRIu64 " elapsed_s=%.4f threads_started=%" PRIu64
         " peak_rss_kb=%ld corrupt=%" PRIu64 "\n",
         kName, throughput, replacements, elapsed, threads_started, peak_kb, corrupt);
  if (spawn_failed) {
    fprintf(stderr, "%s: pthread_create failed while handing a lineage over\n", kName);
    return 1;
  }
  if (corrupt != 0) {
    fprintf(stderr, "%s: %" PRIu64 " blocks were corrupted or handed out twice\n", kName, corrupt);
    return 3;
  }
  return 0;
}
