// Google Benchmark micro-benchmarks of hakmem's fast paths, through the
// hak_ API (api/hakmem.h):
//
//   BM_MallocFree/<size>        hak_malloc + hak_free of one size, one thread
//                               (the thread cache's hit path)
//   BM_MallocFreeBatch/<n>      n hak_mallocs of 64 B, then n hak_frees
//                               (free-list push/pop beyond a single block)
//   BM_RemoteFree/<size>        hak_free of blocks that another thread
//                               allocated (the remote-free push), fed by a
//                               helper thread through a ring; real time is
//                               the pipeline's rate (so a slow allocating
//                               side shows), CPU time the freeing side's
//   BM_SizeClassLookup          hakmem::size_to_class over random sizes
//
//   bazel build --config=release //tools/microbench
//   bazel-out/k8-opt/bin/tools/microbench/microbench [--benchmark_filter=...]

#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"

namespace {

void BM_MallocFree(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  // Warm the thread cache so the loop measures the steady state.
  hak_free(hak_malloc(size));
  for (auto _ : state) {
    void* p = hak_malloc(size);
    benchmark::DoNotOptimize(p);
    hak_free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MallocFree)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(8192)->Arg(32768);

void BM_MallocFreeBatch(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<void*> blocks(n);
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) blocks[i] = hak_malloc(64);
    benchmark::DoNotOptimize(blocks.data());
    for (size_t i = 0; i < n; ++i) hak_free(blocks[i]);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_MallocFreeBatch)->Arg(64)->Arg(1024)->Arg(16384);

// Single-producer/single-consumer ring carrying blocks from the helper
// thread (which allocates) to the benchmark thread (which frees).
class Ring {
 public:
  static constexpr size_t kCap = 4096;

  bool Push(void* p) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ == kCap) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ == kCap) return false;
    }
    slots_[t % kCap] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  void* Pop() {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_) return nullptr;
    }
    void* p = slots_[h % kCap];
    head_.store(h + 1, std::memory_order_release);
    return p;
  }

 private:
  alignas(64) std::atomic<uint64_t> head_{0};
  uint64_t tail_cache_ = 0;
  alignas(64) std::atomic<uint64_t> tail_{0};
  uint64_t head_cache_ = 0;
  alignas(64) void* slots_[kCap];
};

void BM_RemoteFree(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  auto ring = std::make_unique<Ring>();
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      void* p = hak_malloc(size);
      while (!ring->Push(p)) {
        if (stop.load(std::memory_order_relaxed)) {
          hak_free(p);  // a local free, after the measurement
          return;
        }
        sched_yield();
      }
    }
  });
  for (auto _ : state) {
    void* p;
    while ((p = ring->Pop()) == nullptr) sched_yield();
    hak_free(p);
  }
  stop.store(true);
  producer.join();
  while (void* p = ring->Pop()) hak_free(p);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RemoteFree)->Arg(16)->Arg(256)->Arg(4096)->UseRealTime();

void BM_SizeClassLookup(benchmark::State& state) {
  // Random sizes over the whole small range, precomputed so the loop
  // measures the lookup alone.
  std::vector<uint32_t> sizes(4096);
  uint64_t x = 88172645463325252ull;
  for (auto& s : sizes) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s = static_cast<uint32_t>(1 + x % hakmem::kMaxSmallSize);
  }
  size_t i = 0;
  for (auto _ : state) {
    unsigned cls = hakmem::size_to_class(sizes[i++ & 4095]);
    benchmark::DoNotOptimize(cls);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SizeClassLookup);

}  // namespace

BENCHMARK_MAIN();
