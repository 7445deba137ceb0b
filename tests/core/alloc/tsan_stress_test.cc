// Concurrency stress through the hak_ API (no malloc overrides, so the same
// binary runs under ThreadSanitizer, which owns malloc, and under ASan).
//
// Every test keeps exact books: each block carries its allocation id and
// size (tests/support/stress_util.h) and is verified when freed; every
// block allocated is freed exactly once (a double free would abort the
// process); at the end, after hak_collect() has adopted and drained what
// exited threads left, the per-class live-block counts are back to zero
// and hak_check() finds nothing. Thread counts exceed the core count on
// purpose: preemption in the middle of lock-free operations is what these
// tests are after.
//
// Sizes scale down under the sanitizers (see kScale) so the suite stays fast.
#include <gtest/gtest.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <cstdio>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stats.h"
#include "tests/support/stress_util.h"

namespace {

using hakmem_test::fill;
using hakmem_test::random_size;
using hakmem_test::Rng;
using hakmem_test::stats;
using hakmem_test::tagged_id;
using hakmem_test::tagged_size;
using hakmem_test::verify;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr unsigned kScale = 1;
#else
constexpr unsigned kScale = 4;
#endif

std::atomic<uint64_t> g_next_id{1};
std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_frees{0};
std::atomic<uint64_t> g_bad{0};

struct Totals {
  uint64_t live_small = 0;
  uint64_t live_large = 0;
  uint64_t adoptions = 0;
  uint64_t remote_frees = 0;
  uint64_t threads_started = 0;
  uint64_t threads_exited = 0;
};

Totals totals() {
  const hak_stats st = stats();
  Totals t;
  for (unsigned c = 0; c < st.num_classes; ++c) {
    t.live_small += st.classes[c].live_blocks;
    t.adoptions += st.classes[c].adoptions;
    t.remote_frees += st.classes[c].remote_frees;
  }
  t.live_large = st.large_live_blocks;
  t.threads_started = st.threads_started;
  t.threads_exited = st.threads_exited;
  return t;
}

uint64_t chunks_of_class_for(size_t size) {
  const hak_stats st = stats();
  for (unsigned c = 0; c < st.num_classes; ++c) {
    if (st.classes[c].block_size >= size) return st.classes[c].chunks;
  }
  return 0;
}

// Set in the id of blocks from hak_aligned_alloc.
constexpr uint64_t kAlignedBit = uint64_t{1} << 63;

// Allocates a tagged block of n >= 16 bytes through one of the API's entry
// points, chosen at random.
void* tagged_alloc(Rng& r, size_t n) {
  void* p;
  bool aligned = false;
  switch (r.below(8)) {
    case 0: {
      p = hak_calloc(1, n);
      if (p != nullptr) {
        const auto* c = static_cast<const unsigned char*>(p);
        for (size_t i = 0; i < n; i += 61) {
          if (c[i] != 0) g_bad.fetch_add(1);
        }
      }
      break;
    }
    case 1: {
      const size_t align = size_t{32} << r.below(8);  // 32 .. 4096
      p = hak_aligned_alloc(align, n);
      aligned = true;
      if (p != nullptr && reinterpret_cast<uintptr_t>(p) % align != 0) g_bad.fetch_add(1);
      break;
    }
    default:
      p = hak_malloc(n);
  }
  if (p == nullptr) {
    g_bad.fetch_add(1);
    return nullptr;
  }
  if (hak_usable_size(p) < n) g_bad.fetch_add(1);
  uint64_t id = g_next_id.fetch_add(1, std::memory_order_relaxed);
  if (aligned) id |= kAlignedBit;
  fill(p, n, id);
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void tagged_free(Rng& r, void* p) {
  const size_t n = tagged_size(p);
  const uint64_t id = tagged_id(p);
  if (!verify(p, n, id)) g_bad.fetch_add(1);
  // free_sized is for malloc/calloc/realloc blocks (C23); aligned ones
  // would need free_aligned_sized, which the API does not have.
  if ((id & kAlignedBit) == 0 && r.below(4) == 0) {
    hak_free_sized(p, n);
  } else {
    hak_free(p);
  }
  g_frees.fetch_add(1, std::memory_order_relaxed);
}

// Reallocates a tagged block to a new size, checking the kept prefix, and
// re-tags it. Returns the new block (the old one is gone).
void* tagged_realloc(Rng& r, void* p) {
  const size_t old_n = tagged_size(p);
  const uint64_t id = tagged_id(p);
  if (!verify(p, old_n, id)) g_bad.fetch_add(1);
  const size_t n = random_size(r, 64);
  void* q = hak_realloc(p, n);
  if (q == nullptr) {
    g_bad.fetch_add(1);
    return p;
  }
  // The first min(old, new) bytes survive: check the id and a body byte.
  const auto* c = static_cast<const unsigned char*>(q);
  if (tagged_id(q) != id) g_bad.fetch_add(1);
  const size_t keep = std::min(old_n, n);
  if (keep > 24 && c[keep - 9] != hakmem_test::tagged_body_byte(id, keep - 9)) g_bad.fetch_add(1);
  fill(q, n, g_next_id.fetch_add(1, std::memory_order_relaxed));
  return q;
}

// Per-thread inboxes: a sender CASes a block into an empty slot (release),
// the owner takes slots with an exchange (acquire).
class Mailboxes {
 public:
  static constexpr unsigned kSlots = 64;
  explicit Mailboxes(unsigned threads) : slots_(threads * kSlots) {}

  bool send(unsigned to, Rng& r, void* p) {
    const unsigned start = unsigned(r.below(kSlots));
    for (unsigned k = 0; k < 4; ++k) {
      std::atomic<void*>& s = slots_[to * kSlots + (start + k) % kSlots];
      void* expected = nullptr;
      if (s.load(std::memory_order_relaxed) == nullptr &&
          s.compare_exchange_strong(expected, p, std::memory_order_release,
                                    std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  template <class F>
  void drain(unsigned me, F&& f) {
    for (unsigned k = 0; k < kSlots; ++k) {
      std::atomic<void*>& s = slots_[me * kSlots + k];
      if (s.load(std::memory_order_relaxed) == nullptr) continue;
      if (void* p = s.exchange(nullptr, std::memory_order_acquire)) f(p);
    }
  }

 private:
  std::vector<std::atomic<void*>> slots_;
};

class StressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_allocs = 0;
    g_frees = 0;
    g_bad = 0;
  }
  // Every block freed once, contents intact, nothing left live, heap sound.
  // `threads`: how many threads took part (for the summary line).
  void ExpectBooksBalanced(unsigned threads) {
    printf("[reliability] %s: %u threads, %llu blocks allocated, %llu freed\n",
           ::testing::UnitTest::GetInstance()->current_test_info()->name(), threads,
           (unsigned long long)g_allocs.load(), (unsigned long long)g_frees.load());
    EXPECT_EQ(g_bad.load(), 0u) << "corrupted contents, bad usable size or failed allocation";
    EXPECT_EQ(g_allocs.load(), g_frees.load());
    hak_collect();
    const Totals t = totals();
    EXPECT_EQ(t.live_small, 0u) << "blocks allocated but never returned (lost remote free?)";
    EXPECT_EQ(t.live_large, 0u);
    EXPECT_EQ(hak_check(), 0u);
  }
};

// 1. Mixed sizes, local and cross-thread frees, reallocs of blocks another
// thread allocated, contents verified at every free.
TEST_F(StressTest, MixedSizesCrossThreadFrees) {
  constexpr unsigned kThreads = 8;
  const unsigned ops = 30000 * kScale;
  Mailboxes boxes(kThreads);
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng r(t + 1);
      std::vector<void*> live;
      live.reserve(300);
      auto take = [&](void* p) {
        if (r.below(4) == 0) p = tagged_realloc(r, p);
        tagged_free(r, p);
      };
      for (unsigned i = 0; i < ops; ++i) {
        if (live.size() < 256 && r.below(8) < 5) {
          void* p = tagged_alloc(r, random_size(r, 256));
          if (p == nullptr) continue;
          if (r.below(2) == 0) {
            const unsigned to = unsigned(r.below(kThreads));
            if (to != t && boxes.send(to, r, p)) continue;
          }
          live.push_back(p);
        } else if (!live.empty()) {
          const size_t k = r.below(live.size());
          void* p = live[k];
          live[k] = live.back();
          live.pop_back();
          if (r.below(8) == 0) {
            live.push_back(tagged_realloc(r, p));
          } else {
            tagged_free(r, p);
          }
        }
        if ((i & 15) == 0) boxes.drain(t, take);
      }
      sync.arrive_and_wait();  // nobody sends any more
      boxes.drain(t, take);
      for (void* p : live) tagged_free(r, p);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_GT(g_allocs.load(), kThreads * ops / 4);
  ExpectBooksBalanced(kThreads);
  EXPECT_GT(totals().remote_frees, 0u);
}

// 2. Thread churn: thousands of short-lived threads; what they allocate is
// freed by long-lived sinks, by later short-lived threads after the
// allocator has exited, or by themselves.
TEST_F(StressTest, ThreadChurn) {
  constexpr unsigned kSinks = 4, kWave = 8;
  const unsigned churners = 2000;
  constexpr unsigned kOrphans = 512;
  std::vector<std::atomic<void*>> orphans(kOrphans);
  Mailboxes boxes(kSinks);
  std::atomic<bool> done{false};
  const Totals before = totals();

  std::vector<std::thread> sinks;
  for (unsigned s = 0; s < kSinks; ++s) {
    sinks.emplace_back([&, s] {
      Rng r(1000 + s);
      auto take = [&](void* p) { tagged_free(r, p); };
      while (!done.load(std::memory_order_acquire)) {
        boxes.drain(s, take);
        std::this_thread::yield();
      }
      boxes.drain(s, take);
    });
  }
  for (unsigned base = 0; base < churners; base += kWave) {
    std::vector<std::thread> wave;
    for (unsigned w = 0; w < kWave; ++w) {
      wave.emplace_back([&, id = base + w] {
        Rng r(5000 + id);
        // Free blocks whose allocating threads are (mostly) gone.
        for (unsigned k = 0; k < 8; ++k) {
          auto& slot = orphans[r.below(kOrphans)];
          if (void* p = slot.exchange(nullptr, std::memory_order_acquire)) tagged_free(r, p);
        }
        void* mine[32];
        for (void*& p : mine) p = tagged_alloc(r, random_size(r, 512));
        for (void* p : mine) {
          if (p == nullptr) continue;
          switch (r.below(4)) {
            case 0:  // to a sink
              if (boxes.send(unsigned(r.below(kSinks)), r, p)) continue;
              break;
            case 1: {  // to whoever comes later
              void* expected = nullptr;
              auto& slot = orphans[r.below(kOrphans)];
              if (slot.compare_exchange_strong(expected, p, std::memory_order_release,
                                               std::memory_order_relaxed)) {
                continue;
              }
              break;
            }
            default:
              break;
          }
          tagged_free(r, p);
        }
      });
    }
    for (auto& th : wave) th.join();
  }
  done.store(true, std::memory_order_release);
  for (auto& th : sinks) th.join();
  Rng r(7);
  for (auto& slot : orphans) {
    if (void* p = slot.exchange(nullptr)) tagged_free(r, p);
  }
  ExpectBooksBalanced(churners + kSinks);
  const Totals after = totals();
  // Every thread that allocated got a heap and gave it back at exit (the
  // sinks only free, which needs no heap).
  const uint64_t started = after.threads_started - before.threads_started;
  EXPECT_EQ(after.threads_exited - before.threads_exited, started);
  EXPECT_GE(started, churners);
  EXPECT_LE(started, churners + kSinks);
}

// 3. Expansion storm: many threads released at once all allocate from one
// size class whose chunks are exhausted, so they race to grow it.
TEST_F(StressTest, ExpansionStorm) {
  constexpr unsigned kThreads = 16;
  // Classes nobody else in this binary uses much, one storm each.
  const size_t sizes[] = {2560, 5120, 1280, 12288};
  for (size_t size : sizes) {
    const uint64_t chunks_before = chunks_of_class_for(size);
    // Each thread needs about three chunks' worth of blocks.
    const unsigned per_thread = unsigned(3 * (2u << 20) / size);
    std::vector<std::vector<void*>> blocks(kThreads);
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::barrier sync(kThreads);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        Rng r(t);
        blocks[t].reserve(per_thread);
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        for (unsigned i = 0; i < per_thread; ++i) {
          void* p = hak_malloc(size);
          if (p == nullptr) {
            g_bad.fetch_add(1);
            continue;
          }
          fill(p, size, g_next_id.fetch_add(1, std::memory_order_relaxed));
          g_allocs.fetch_add(1, std::memory_order_relaxed);
          blocks[t].push_back(p);
        }
        sync.arrive_and_wait();
        // Free the neighbour's blocks: all remote frees into live owners.
        for (void* p : blocks[(t + 1) % kThreads]) tagged_free(r, p);
      });
    }
    while (ready.load() < kThreads) std::this_thread::yield();
    go.store(true, std::memory_order_release);
    for (auto& th : threads) th.join();
    const uint64_t chunks_after = chunks_of_class_for(size);
    const uint64_t bytes = uint64_t(kThreads) * per_thread * size;
    // The class's chunks must have held every block at once.
    EXPECT_GE(chunks_after * (2u << 20), bytes) << "size " << size;
    EXPECT_GT(chunks_after, chunks_before) << "size " << size;
    // No two live blocks overlapped (checked by their contents at free and
    // by the address ranges here).
    std::vector<uintptr_t> all;
    for (auto& v : blocks) {
      for (void* p : v) all.push_back(reinterpret_cast<uintptr_t>(p));
    }
    std::sort(all.begin(), all.end());
    for (size_t i = 1; i < all.size(); ++i) {
      ASSERT_GE(all[i] - all[i - 1], size) << "overlapping blocks";
    }
    EXPECT_EQ(hak_check(), 0u);
  }
  ExpectBooksBalanced(kThreads * 4);
}

// 4. Adoption while remote frees arrive: producers allocate, hand their
// blocks to freers and exit at once, so their slabs are abandoned while
// frees are still coming in; adopters allocate the same class and take the
// abandoned slabs over; a collector runs hak_collect() concurrently.
TEST_F(StressTest, AdoptionWithRemoteFrees) {
  constexpr unsigned kProducers = 4, kFreers = 3, kAdopters = 3;
  constexpr size_t kSize = 200;
  constexpr unsigned kPerProducer = 600;  // ~2 slabs of 208-byte blocks
  const unsigned rounds = 50 * kScale;
  constexpr unsigned kSlots = 1024;
  std::vector<std::atomic<void*>> handoff(kSlots);
  std::atomic<bool> done{false};
  const Totals before = totals();

  std::vector<std::thread> workers;
  for (unsigned f = 0; f < kFreers; ++f) {
    workers.emplace_back([&, f] {
      Rng r(100 + f);
      for (;;) {
        const bool last = done.load(std::memory_order_acquire);
        for (unsigned k = f; k < kSlots; k += kFreers) {
          auto& slot = handoff[k];
          if (slot.load(std::memory_order_relaxed) == nullptr) continue;
          if (void* p = slot.exchange(nullptr, std::memory_order_acquire)) tagged_free(r, p);
        }
        if (last) break;
        std::this_thread::yield();
      }
    });
  }
  for (unsigned a = 0; a < kAdopters; ++a) {
    workers.emplace_back([&, a] {
      Rng r(200 + a);
      std::vector<void*> mine;
      while (!done.load(std::memory_order_acquire)) {
        for (unsigned k = 0; k < 64; ++k) {
          void* p = hak_malloc(kSize);
          if (p == nullptr) {
            g_bad.fetch_add(1);
            continue;
          }
          fill(p, kSize, g_next_id.fetch_add(1, std::memory_order_relaxed));
          g_allocs.fetch_add(1, std::memory_order_relaxed);
          mine.push_back(p);
        }
        while (mine.size() > 32) {
          tagged_free(r, mine.back());
          mine.pop_back();
        }
        if (a == 0) hak_collect();
        std::this_thread::yield();
      }
      for (void* p : mine) tagged_free(r, p);
    });
  }
  for (unsigned round = 0; round < rounds; ++round) {
    std::vector<std::thread> producers;
    for (unsigned p = 0; p < kProducers; ++p) {
      producers.emplace_back([&, p, round] {
        Rng r(round * 64 + p);
        for (unsigned i = 0; i < kPerProducer; ++i) {
          void* b = hak_malloc(kSize);
          if (b == nullptr) {
            g_bad.fetch_add(1);
            continue;
          }
          fill(b, kSize, g_next_id.fetch_add(1, std::memory_order_relaxed));
          g_allocs.fetch_add(1, std::memory_order_relaxed);
          // Keep one in five: it is freed remotely after we exit.
          bool sent = false;
          for (unsigned tries = 0; tries < 8 && !sent; ++tries) {
            void* expected = nullptr;
            auto& slot = handoff[r.below(kSlots)];
            sent = slot.compare_exchange_strong(expected, b, std::memory_order_release,
                                                std::memory_order_relaxed);
          }
          if (!sent) tagged_free(r, b);
        }
      });
    }
    for (auto& th : producers) th.join();
  }
  done.store(true, std::memory_order_release);
  for (auto& th : workers) th.join();
  Rng r(9);
  for (auto& slot : handoff) {
    if (void* p = slot.exchange(nullptr)) tagged_free(r, p);
  }
  ExpectBooksBalanced(rounds * kProducers + kFreers + kAdopters);
  const uint64_t adoptions = totals().adoptions - before.adoptions;
  printf("[reliability] AdoptionWithRemoteFrees: %llu abandoned slabs adopted\n",
         (unsigned long long)adoptions);
  EXPECT_GT(adoptions, 0u) << "no abandoned slab was adopted";
}

// 5. Large blocks shared between threads: the large cache's slots are
// contended by puts and takes of different sizes.
TEST_F(StressTest, LargeBlocksAcrossThreads) {
  constexpr unsigned kThreads = 8;
  const unsigned ops = 400 * kScale;
  Mailboxes boxes(kThreads);
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng r(300 + t);
      auto take = [&](void* p) { tagged_free(r, p); };
      for (unsigned i = 0; i < ops; ++i) {
        // 32 KiB .. 256 KiB, one in 16 up to 4 MiB (several granules).
        const size_t n = 32 * 1024 + 1 + r.below(r.below(16) == 0 ? (4u << 20) : (224u << 10));
        void* p = tagged_alloc(r, n);
        if (p == nullptr) continue;
        if (!boxes.send(unsigned(r.below(kThreads)), r, p)) tagged_free(r, p);
        if ((i & 3) == 0) boxes.drain(t, take);
      }
      sync.arrive_and_wait();
      boxes.drain(t, take);
    });
  }
  for (auto& th : threads) th.join();
  ExpectBooksBalanced(kThreads);
}

// 6. Batched remote frees: every thread frees blocks of every other thread,
// a few size classes so that batches (one slot per class in the freeing
// heap) fill, flush on a change of slab and flush when full. Two threads
// only ever free (they get a heap on their first free and batch too).
// Allocating threads stop right after their last frees, so they exit with
// blocks pending in their batches; those must reach their slabs at exit.
TEST_F(StressTest, BatchedRemoteFreesAmongManyThreads) {
  constexpr unsigned kAllocators = 6, kFreeOnly = 2, kThreads = kAllocators + kFreeOnly;
  constexpr size_t kSizes[] = {32, 64, 200, 1000};
  const unsigned ops = 20000 * kScale;
  Mailboxes boxes(kThreads);
  std::barrier start(kThreads), sync(kThreads);
  std::atomic<unsigned> allocators_done{0};
  const Totals before = totals();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng r(500 + t);
      auto take = [&](void* p) { tagged_free(r, p); };
      start.arrive_and_wait();  // all at once, so that mailboxes have readers
      if (t < kAllocators) {
        for (unsigned i = 0; i < ops; ++i) {
          const size_t n = kSizes[r.below(4)] - 8 * r.below(2);
          void* p = hak_malloc(n);
          if (p == nullptr) {
            g_bad.fetch_add(1);
            continue;
          }
          fill(p, n, g_next_id.fetch_add(1, std::memory_order_relaxed));
          g_allocs.fetch_add(1, std::memory_order_relaxed);
          unsigned to = unsigned(r.below(kThreads));
          if (to == t) to = (to + 1) % kThreads;
          if (!boxes.send(to, r, p)) tagged_free(r, p);
          if ((i & 31) == 0) boxes.drain(t, take);
        }
        allocators_done.fetch_add(1, std::memory_order_release);
      } else {
        while (allocators_done.load(std::memory_order_acquire) < kAllocators) {
          boxes.drain(t, take);
          std::this_thread::yield();
        }
      }
      sync.arrive_and_wait();  // nobody sends any more
      boxes.drain(t, take);    // remote frees, mostly batched; then exit
    });
  }
  for (auto& th : threads) th.join();
  ExpectBooksBalanced(kThreads);
  const Totals after = totals();
  // How many frees were remote depends on scheduling (a full mailbox makes
  // the sender free the block itself); some must have been.
  printf("[reliability] BatchedRemoteFreesAmongManyThreads: %llu remote frees\n",
         (unsigned long long)(after.remote_frees - before.remote_frees));
  EXPECT_GT(after.remote_frees - before.remote_frees, 0u) << "no free was remote";
}

// 7. A thread that only frees exits with frees pending in its batch: they
// reach the owner, which is still running and reuses the memory instead of
// taking new slabs.
TEST_F(StressTest, OwnerReusesBlocksAThreadFreedBeforeExiting) {
  constexpr size_t kSize = 96;
  constexpr unsigned kBlocks = 4000;  // ~6 slabs
  const unsigned rounds = 20 * kScale;
  std::atomic<unsigned> round_freed{0};
  std::vector<void*> blocks(kBlocks);
  uint64_t first_slabs = 0, max_slabs = 0;
  std::thread owner([&] {
    Rng r(7);
    for (unsigned round = 0; round < rounds; ++round) {
      for (void*& p : blocks) {
        p = hak_malloc(kSize);
        if (p == nullptr) {
          g_bad.fetch_add(1);
          continue;
        }
        fill(p, kSize, g_next_id.fetch_add(1, std::memory_order_relaxed));
        g_allocs.fetch_add(1, std::memory_order_relaxed);
      }
      const uint64_t slabs = hakmem_test::class_stats(kSize).slabs_in_use;
      if (round == 0) first_slabs = slabs;
      max_slabs = std::max(max_slabs, slabs);
      // A fresh thread frees every block (its first free gives it a heap)
      // and exits: its last batch of each class is flushed at its exit.
      std::thread([&] {
        Rng fr(1000 + round);
        for (void* p : blocks) tagged_free(fr, p);
      }).join();
      round_freed.fetch_add(1, std::memory_order_relaxed);
    }
  });
  owner.join();
  EXPECT_EQ(round_freed.load(), rounds);
  EXPECT_LE(max_slabs, first_slabs + 2) << "remotely freed blocks were not reused";
  ExpectBooksBalanced(2 * rounds + 1);
}

// 8. A free from a thread's TLS teardown after its heap is gone (a pthread
// key destructor that runs after hakmem's): no heap, no batch, the block
// goes straight to its slab's remote list. The block's owner has exited, so
// hak_collect must find the block there.
pthread_key_t g_late_key;

TEST_F(StressTest, FreeAfterThreadExitGoesStraightToTheSlab) {
  hak_free(hak_malloc(16));  // hakmem initialised, so its key comes first
  ASSERT_EQ(pthread_key_create(&g_late_key,
                               [](void* p) {
                                 Rng r(3);
                                 tagged_free(r, p);
                               }),
            0);
  const unsigned threads = 16 * kScale;
  const Totals before = totals();
  for (unsigned t = 0; t < threads; ++t) {
    void* block = nullptr;
    std::thread([&] {  // the owner: allocates, exits (abandons the slab)
      block = hak_malloc(144);
      ASSERT_NE(block, nullptr);
      fill(block, 144, g_next_id.fetch_add(1, std::memory_order_relaxed));
      g_allocs.fetch_add(1, std::memory_order_relaxed);
    }).join();
    std::thread([&] {
      hak_free(hak_malloc(144));  // this thread has a heap
      pthread_setspecific(g_late_key, block);
    }).join();
  }
  pthread_key_delete(g_late_key);
  EXPECT_EQ(g_frees.load(), threads);
  EXPECT_GE(totals().remote_frees - before.remote_frees, threads);
  ExpectBooksBalanced(2 * threads);
}

}  // namespace
