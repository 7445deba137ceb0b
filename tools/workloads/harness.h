// The harness the workload subcommands share: key=value options, memory
// that bypasses the allocator under test, timed runs and the RESULT line
// tools/bench.sh parses. Nothing here allocates through malloc.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tools/common/bench_common.h"

namespace workloads {

using bench::Rng;

// ---------------------------------------------------------------------------
// Options: key=value pairs with defaults; size values accept K/M/G suffixes.

struct Options {
  int argc = 0;
  char** argv = nullptr;
  bool bad = false;

  const char* Find(const char* key) const {
    const size_t n = strlen(key);
    for (int i = 0; i < argc; ++i) {
      if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    }
    return nullptr;
  }

  double Double(const char* key, double def) {
    const char* v = Find(key);
    if (v == nullptr) return def;
    char* end = nullptr;
    double d = strtod(v, &end);
    if (end == v || *end != '\0') {
      fprintf(stderr, "bad value for %s: %s\n", key, v);
      bad = true;
    }
    return d;
  }

  uint64_t Size(const char* key, uint64_t def) {
    const char* v = Find(key);
    if (v == nullptr) return def;
    char* end = nullptr;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v) {
      bad = true;
    } else if (*end == 'k' || *end == 'K') {
      x <<= 10, ++end;
    } else if (*end == 'm' || *end == 'M') {
      x <<= 20, ++end;
    } else if (*end == 'g' || *end == 'G') {
      x <<= 30, ++end;
    }
    if (*end != '\0') bad = true;
    if (bad) fprintf(stderr, "bad value for %s: %s\n", key, v);
    return x;
  }

  // Rejects keys that no subcommand asked for (typos).
  bool CheckKnown(const char* const* known) {
    for (int i = 0; i < argc; ++i) {
      bool ok = false;
      for (const char* const* k = known; *k; ++k) {
        const size_t n = strlen(*k);
        if (strncmp(argv[i], *k, n) == 0 && argv[i][n] == '=') ok = true;
      }
      if (!ok) {
        fprintf(stderr, "unknown option: %s\n", argv[i]);
        bad = true;
      }
    }
    return !bad;
  }
};

inline void* Malloc(size_t n) {
  void* p = malloc(n);
  if (p == nullptr && n != 0) {
    fprintf(stderr, "malloc(%zu) failed\n", n);
    abort();
  }
  return p;
}

// Harness-only memory (queues, pointer arrays) comes straight from mmap so it
// neither perturbs nor is attributed to the allocator under test.
template <class T>
T* HarnessArray(size_t n) {
  void* p = mmap(nullptr, sizeof(T) * n + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return static_cast<T*>(p);
}
template <class T>
void FreeHarnessArray(T* p, size_t n) {
  munmap(p, sizeof(T) * n + 1);
}

inline std::atomic<bool> g_stop{false};
inline std::atomic<uint64_t> g_corrupt{0};

inline bool Stopped() { return g_stop.load(std::memory_order_relaxed); }

inline void CheckedFree(void* p, size_t size) {
  if (!bench::Check(p, size)) g_corrupt.fetch_add(1, std::memory_order_relaxed);
  free(p);
}

// Runs fn(arg_i) on n threads, sleeps `seconds`, raises the stop flag and
// joins them. Returns the wall time from start to the last join.
template <class Arg>
inline double RunTimed(int n, Arg* args, void* (*fn)(void*), double seconds) {
  pthread_t* th = HarnessArray<pthread_t>(n);
  g_stop.store(false);
  const double start = bench::NowSeconds();
  for (int i = 0; i < n; ++i) {
    if (pthread_create(&th[i], nullptr, fn, &args[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(1);
    }
  }
  bench::SleepSeconds(seconds);
  g_stop.store(true);
  for (int i = 0; i < n; ++i) pthread_join(th[i], nullptr);
  const double elapsed = bench::NowSeconds() - start;
  FreeHarnessArray(th, n);
  return elapsed;
}

inline int Finish(const char* name, double ops, double elapsed, const char* extra) {
  const long peak = bench::PeakRssKb();
  const uint64_t corrupt = g_corrupt.load();
  const double rate = elapsed > 0 ? ops / elapsed : 0;
  printf("%s: %.0f operations in %.3f s = %.0f ops/s, peak RSS %ld KiB\n", name, ops, elapsed,
         rate, peak);
  printf("RESULT workload=%s ops_per_sec=%.0f ops=%.0f elapsed_s=%.4f%s%s peak_rss_kb=%ld corrupt=%" PRIu64
         "\n",
         name, rate, ops, elapsed, extra[0] ? " " : "", extra, peak, corrupt);
  if (corrupt) {
    fprintf(stderr, "%s: %" PRIu64 " blocks corrupted or handed out twice\n", name, corrupt);
    return 3;
  }
  return 0;
}


inline void Backoff(unsigned& spins) {
  if (++spins < 64) {
    __builtin_ia32_pause();
  } else {
    spins = 0;
    sched_yield();
  }
}

}  // namespace workloads
