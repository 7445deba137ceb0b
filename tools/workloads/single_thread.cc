// Workloads of one thread's small-object speed: what a program that
// allocates many short-lived small objects feels.
#include "tools/workloads/commands.h"

namespace workloads {
namespace {

// Runs `step` (which returns the operations it performed) in rounds of 256
// until `seconds` have passed; returns the operations and the elapsed time.
template <class Step>
double RunFor(double seconds, uint64_t* ops, Step step) {
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  do {
    for (int k = 0; k < 256; ++k) *ops += step();
  } while (bench::NowSeconds() < deadline);
  return bench::NowSeconds() - start;
}

}  // namespace

// ---------------------------------------------------------------------------
// small-churn: one thread keeps `live` small blocks (min..max bytes) and
// replaces a random one per step, as a program's long-lived small objects
// churn (a big-number or symbolic computation's temporaries that outlive a
// call). An operation is one allocator call.
int SmallChurn(Options& o) {
  static const char* const kKnown[] = {"seconds", "live", "min", "max", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const uint64_t live = o.Size("live", 10000);
  const uint64_t min = o.Size("min", 8), max = o.Size("max", 256);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || live < 1 || min < 1 || min > max) return 2;
  Rng rng(seed, 0);
  void** blocks = HarnessArray<void*>(live);
  uint32_t* sizes = HarnessArray<uint32_t>(live);
  for (uint64_t i = 0; i < live; ++i) {
    sizes[i] = static_cast<uint32_t>(rng.Between(min, max));
    blocks[i] = Malloc(sizes[i]);
    bench::Stamp(blocks[i], sizes[i]);
  }
  uint64_t ops = 0;
  const double elapsed = RunFor(seconds, &ops, [&] {
    const uint64_t v = rng.Below(live);
    CheckedFree(blocks[v], sizes[v]);
    sizes[v] = static_cast<uint32_t>(rng.Between(min, max));
    blocks[v] = Malloc(sizes[v]);
    bench::Stamp(blocks[v], sizes[v]);
    return uint64_t{2};
  });
  for (uint64_t i = 0; i < live; ++i) CheckedFree(blocks[i], sizes[i]);
  return Finish("small-churn", static_cast<double>(ops), elapsed, "threads=1");
}

namespace {

// ---------------------------------------------------------------------------
// trees: the binary-trees pattern. A long-lived tree of depth `depth` stays
// up; each step builds a short-lived complete tree of depth 4..depth (nodes
// of `node` bytes: two child pointers and a payload), checks it by walking it
// and frees it bottom-up. An operation is one allocator call.

struct Node {
  Node* left;
  Node* right;
  uint64_t value;
};

Node* Build(int depth, uint64_t value, uint64_t node_bytes) {
  auto* n = static_cast<Node*>(Malloc(node_bytes));
  n->value = value;
  if (depth > 0) {
    n->left = Build(depth - 1, 2 * value, node_bytes);
    n->right = Build(depth - 1, 2 * value + 1, node_bytes);
  } else {
    n->left = n->right = nullptr;
  }
  return n;
}

// Frees the tree; returns the number of nodes, and counts a node whose
// value is not what Build wrote as corrupt.
uint64_t Release(Node* n, uint64_t value) {
  if (n == nullptr) return 0;
  if (n->value != value) g_corrupt.fetch_add(1, std::memory_order_relaxed);
  const uint64_t count = 1 + Release(n->left, 2 * value) + Release(n->right, 2 * value + 1);
  free(n);
  return count;
}

}  // namespace

int Trees(Options& o) {
  static const char* const kKnown[] = {"seconds", "depth", "node", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const int depth = static_cast<int>(o.Size("depth", 12));
  const uint64_t node = o.Size("node", 32);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || depth < 4 || depth > 24 || node < sizeof(Node)) return 2;
  Rng rng(seed, 0);
  Node* long_lived = Build(depth, 1, node);
  uint64_t ops = 0;
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  do {
    const int d = 4 + static_cast<int>(rng.Below(depth - 3));
    ops += 2 * Release(Build(d, 1, node), 1);
  } while (bench::NowSeconds() < deadline);
  const double elapsed = bench::NowSeconds() - start;
  ops += 2 * Release(long_lived, 1);
  char extra[64];
  snprintf(extra, sizeof extra, "threads=1 depth=%d node=%" PRIu64, depth, node);
  return Finish("trees", static_cast<double>(ops), elapsed, extra);
}

namespace {

// ---------------------------------------------------------------------------
// mixed-loop: each of `threads` threads loops: allocate 1..16 blocks of
// random sizes min..max, write them, free them in allocation order. The
// sizes cross many classes, so every class's cache is exercised, not one.
// An operation is one allocator call.

struct alignas(64) LoopArg {
  int index;
  uint64_t seed, min, max;
  uint64_t ops;
};

void* MixedLoopWorker(void* a) {
  auto* arg = static_cast<LoopArg*>(a);
  Rng rng(arg->seed, arg->index);
  void* held[16];
  uint32_t size[16];
  uint64_t ops = 0;
  while (!Stopped()) {
    for (int k = 0; k < 64; ++k) {
      const int n = 1 + static_cast<int>(rng.Below(16));
      for (int i = 0; i < n; ++i) {
        size[i] = static_cast<uint32_t>(rng.Between(arg->min, arg->max));
        held[i] = Malloc(size[i]);
        bench::Stamp(held[i], size[i]);
      }
      for (int i = 0; i < n; ++i) CheckedFree(held[i], size[i]);
      ops += 2 * n;
    }
  }
  arg->ops = ops;
  return nullptr;
}

}  // namespace

int MixedLoop(Options& o) {
  static const char* const kKnown[] = {"seconds", "threads", "min", "max", "seed", nullptr};
  const double seconds = o.Double("seconds", 2);
  const int threads = static_cast<int>(o.Size("threads", 1));
  const uint64_t min = o.Size("min", 16), max = o.Size("max", 1024);
  const uint64_t seed = o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || threads < 1 || min < 1 || min > max) return 2;
  LoopArg* args = HarnessArray<LoopArg>(threads);
  for (int t = 0; t < threads; ++t) args[t] = LoopArg{t, seed, min, max, 0};
  const double elapsed = RunTimed(threads, args, MixedLoopWorker, seconds);
  uint64_t ops = 0;
  for (int t = 0; t < threads; ++t) ops += args[t].ops;
  char extra[64];
  snprintf(extra, sizeof extra, "threads=%d", threads);
  return Finish("mixed-loop", static_cast<double>(ops), elapsed, extra);
}

// ---------------------------------------------------------------------------
// pair: the micro-benchmark. One thread mallocs a block of `size` bytes,
// writes its first byte and frees it, over and over: the cost of a malloc +
// free pair on the thread cache's hit path. Reports ns_per_pair.
int Pair(Options& o) {
  static const char* const kKnown[] = {"seconds", "size", "seed", nullptr};
  const double seconds = o.Double("seconds", 1);
  const uint64_t size = o.Size("size", 64);
  o.Size("seed", 42);
  if (!o.CheckKnown(kKnown) || size < 1) return 2;
  free(Malloc(size));  // warm: the first call may initialise the allocator
  uint64_t pairs = 0;
  const double start = bench::NowSeconds();
  const double deadline = start + seconds;
  do {
    for (int k = 0; k < 4096; ++k) {
      auto* p = static_cast<volatile char*>(Malloc(size));
      *p = static_cast<char>(k);
      free(const_cast<char*>(p));
    }
    pairs += 4096;
  } while (bench::NowSeconds() < deadline);
  const double elapsed = bench::NowSeconds() - start;
  const long peak = bench::PeakRssKb();
  const double ns = elapsed * 1e9 / static_cast<double>(pairs);
  printf("pair: %" PRIu64 " malloc+free pairs of %" PRIu64 " B in %.3f s = %.2f ns per pair\n",
         pairs, size, elapsed, ns);
  printf("RESULT workload=pair ns_per_pair=%.3f pairs=%" PRIu64 " size=%" PRIu64
         " elapsed_s=%.4f peak_rss_kb=%ld corrupt=0\n",
         ns, pairs, size, elapsed, peak);
  return 0;
}

}  // namespace workloads
