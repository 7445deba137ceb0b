// Thread exit (core/alloc/process.cc thread_exit, core/heap/slab_source.cc
// abandon/adopt/collect): a thread that exits with live blocks leaves them
// valid; any thread may free them later; their slabs are adopted or released
// and the memory is reused.
//
// Each test uses size classes no other test in this file touches.
#include <pthread.h>

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "tests/support/pattern.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace hakmem {
namespace {

using hakmem_test::check_pattern;
using hakmem_test::fill_pattern;
using hakmem_test::class_stats;
using hakmem_test::stats;

struct Block {
  void* p;
  size_t size;
};

TEST(ThreadExit, BlocksOutliveTheirThreadAndAreFreedByOthers) {
  const size_t sizes[] = {48, 256, 3000};
  constexpr size_t kPerSize = 2000;
  for (size_t s : sizes) ASSERT_EQ(class_stats(s).chunks, 0u) << s;
  const hak_stats before = stats();

  std::vector<Block> blocks;
  std::thread([&] {
    for (size_t s : sizes) {
      for (size_t i = 0; i < kPerSize; ++i) {
        void* p = hak_malloc(s);
        ASSERT_NE(p, nullptr);
        fill_pattern(p, s, reinterpret_cast<uintptr_t>(p));
        blocks.push_back({p, s});
      }
    }
  }).join();
  ASSERT_EQ(blocks.size(), 3 * kPerSize);

  const hak_stats exited = stats();
  EXPECT_GE(exited.threads_exited, before.threads_exited + 1);
  EXPECT_EQ(exited.threads_started - before.threads_started,
            exited.threads_exited - before.threads_exited);
  for (size_t s : sizes) {
    const hak_class_stats& cs = exited.classes[size_to_class(s)];
    EXPECT_EQ(cs.live_blocks, kPerSize) << s;
    EXPECT_GT(cs.slabs_in_use, 0u) << "abandoned slabs still hold live blocks: " << s;
  }
  for (const Block& b : blocks) {
    ASSERT_TRUE(hak_owns(b.p));
    ASSERT_TRUE(check_pattern(b.p, b.size, reinterpret_cast<uintptr_t>(b.p)))
        << "contents of a block of an exited thread changed";
  }
  EXPECT_EQ(hak_check(), 0u);

  // Three threads free the blocks, interleaved, concurrently.
  std::vector<std::thread> freers;
  for (unsigned t = 0; t < 3; ++t) {
    freers.emplace_back([&, t] {
      for (size_t i = t; i < blocks.size(); i += 3) {
        if (!check_pattern(blocks[i].p, blocks[i].size, reinterpret_cast<uintptr_t>(blocks[i].p))) {
          ADD_FAILURE() << "block " << i << " changed";
        }
        hak_free(blocks[i].p);
      }
    });
  }
  for (auto& t : freers) t.join();

  // Each freer gets a heap on its first free, so it adopts an abandoned slab
  // on its first free into it and frees the rest of that slab's blocks it
  // holds locally; its frees into slabs another freer adopted are remote.
  // A freer that exits releases the adopted slabs it emptied and abandons
  // the others again (blocks of them may still come from freers that exit
  // later and flush their batches): those are collected below.
  uint64_t slabs_before_collect = 0;
  const hak_stats freed = stats();
  for (size_t s : sizes) {
    const hak_class_stats& cs = freed.classes[size_to_class(s)];
    const hak_class_stats& was = before.classes[size_to_class(s)];
    EXPECT_GT(cs.adoptions, was.adoptions) << s;
    EXPECT_LT(cs.remote_frees - was.remote_frees, kPerSize) << s;
    slabs_before_collect += cs.slabs_in_use;
  }
  EXPECT_EQ(hak_check(), 0u);

  const size_t released = hak_collect();
  EXPECT_EQ(released, slabs_before_collect) << "every abandoned slab is empty now";
  const hak_stats collected = stats();
  for (size_t s : sizes) {
    const hak_class_stats& cs = collected.classes[size_to_class(s)];
    EXPECT_EQ(cs.slabs_in_use, 0u) << s;
    EXPECT_EQ(cs.live_blocks, 0u) << s;
  }
  EXPECT_EQ(hak_collect(), 0u) << "nothing left to collect";
  EXPECT_EQ(hak_check(), 0u);
}

TEST(ThreadExit, AbandonedSlabsAreAdoptedBeforeTheClassGrows) {
  constexpr size_t kSize = 512;
  constexpr size_t kCount = 1000;
  ASSERT_EQ(class_stats(kSize).chunks, 0u);

  // The first thread frees every other block, then exits: all its slabs are
  // half full, so they are abandoned, not released.
  std::vector<void*> survivors;
  std::thread([&] {
    std::vector<void*> mine;
    for (size_t i = 0; i < kCount; ++i) mine.push_back(hak_malloc(kSize));
    for (size_t i = 0; i < kCount; ++i) {
      if (i % 2) {
        hak_free(mine[i]);
      } else {
        fill_pattern(mine[i], kSize, reinterpret_cast<uintptr_t>(mine[i]));
        survivors.push_back(mine[i]);
      }
    }
  }).join();
  const hak_class_stats abandoned = class_stats(kSize);
  EXPECT_EQ(abandoned.live_blocks, kCount / 2);
  ASSERT_GT(abandoned.slabs_in_use, 1u);
  const uint64_t chunks = abandoned.chunks;

  // A second thread needs as many blocks: it takes the holes first.
  std::vector<void*> second;
  std::thread([&] {
    for (size_t i = 0; i < kCount / 2; ++i) {
      void* p = hak_malloc(kSize);
      ASSERT_NE(p, nullptr);
      fill_pattern(p, kSize, ~reinterpret_cast<uintptr_t>(p));
      second.push_back(p);
    }
  }).join();
  const hak_class_stats adopted = class_stats(kSize);
  EXPECT_EQ(adopted.adoptions - abandoned.adoptions, abandoned.slabs_in_use)
      << "every abandoned slab with free blocks should be adopted";
  EXPECT_EQ(adopted.chunks, chunks);
  EXPECT_EQ(adopted.slabs_in_use, abandoned.slabs_in_use)
      << "the holes suffice: no fresh slab should be claimed";
  EXPECT_EQ(adopted.live_blocks, kCount);
  for (void* p : survivors) {
    ASSERT_TRUE(check_pattern(p, kSize, reinterpret_cast<uintptr_t>(p)));
  }
  for (void* p : second) {
    ASSERT_TRUE(check_pattern(p, kSize, ~reinterpret_cast<uintptr_t>(p)));
  }
  for (void* p : survivors) hak_free(p);
  for (void* p : second) hak_free(p);
  hak_collect();
  EXPECT_EQ(class_stats(kSize).slabs_in_use, 0u);
  EXPECT_EQ(class_stats(kSize).live_blocks, 0u);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(ThreadExit, GenerationsOfShortLivedThreadsReuseMemory) {
  // Each thread frees the blocks the previous (exited) thread left behind,
  // then allocates its own and exits. Without adoption or release the class
  // would need a new chunk every few generations.
  constexpr size_t kSize = 128;
  constexpr size_t kPerThread = 2000;  // 256 KiB
  constexpr int kGenerations = 100;    // 25 MiB in total
  ASSERT_EQ(class_stats(kSize).chunks, 0u);
  const hak_stats before = stats();

  std::vector<void*> previous;
  for (int g = 0; g < kGenerations; ++g) {
    std::vector<void*> next;
    std::thread([&] {
      for (void* p : previous) {
        if (!check_pattern(p, kSize, reinterpret_cast<uintptr_t>(p) + g - 1)) {
          ADD_FAILURE() << "generation " << g - 1 << " block changed";
        }
        hak_free(p);
      }
      for (size_t i = 0; i < kPerThread; ++i) {
        void* p = hak_malloc(kSize);
        if (p == nullptr) return;
        fill_pattern(p, kSize, reinterpret_cast<uintptr_t>(p) + g);
        next.push_back(p);
      }
    }).join();
    ASSERT_EQ(next.size(), kPerThread);
    previous.swap(next);
  }
  const hak_stats after = stats();
  const hak_class_stats& cs = after.classes[size_to_class(kSize)];
  EXPECT_LE(cs.chunks, 2u) << "memory of exited threads was not reused";
  EXPECT_EQ(cs.live_blocks, kPerThread);
  EXPECT_GE(after.threads_started - before.threads_started, uint64_t(kGenerations));
  EXPECT_EQ(after.threads_started - before.threads_started,
            after.threads_exited - before.threads_exited);
  for (void* p : previous) hak_free(p);
  hak_collect();
  EXPECT_EQ(class_stats(kSize).slabs_in_use, 0u);
  EXPECT_EQ(hak_check(), 0u);
}

// A TLS destructor that runs after hakmem's own (its key is created later)
// still allocates and frees: the thread gets a second heap, which is cleaned
// up by another round of destructors.
std::atomic<void*> g_from_destructor{nullptr};

void late_destructor(void* arg) {
  void* p = hak_malloc(reinterpret_cast<uintptr_t>(arg));
  if (p != nullptr) fill_pattern(p, 96, 7);
  void* q = hak_malloc(1 << 20);  // a large block too
  hak_free(q);
  g_from_destructor.store(p);
}

TEST(ThreadExit, AllocationFromALaterTlsDestructor) {
  hak_free(hak_malloc(1));  // hakmem's key exists before ours
  pthread_key_t key;
  ASSERT_EQ(pthread_key_create(&key, late_destructor), 0);
  const hak_stats before = stats();
  std::thread([&] {
    hak_free(hak_malloc(96));
    pthread_setspecific(key, reinterpret_cast<void*>(uintptr_t{96}));
  }).join();
  const hak_stats after = stats();
  void* p = g_from_destructor.load();
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(hak_owns(p));
  EXPECT_TRUE(check_pattern(p, 96, 7));
  EXPECT_EQ(after.threads_started - before.threads_started, 2u)
      << "the destructor's allocation should have needed a second heap";
  EXPECT_EQ(after.threads_started - before.threads_started,
            after.threads_exited - before.threads_exited)
      << "a heap created during thread exit must be released too";
  hak_free(p);
  pthread_key_delete(key);
  hak_collect();
  EXPECT_EQ(hak_check(), 0u);
}

TEST(ThreadExit, MoreThreadsAliveThanOneHeapPage) {
  // 150 threads at once need more than one page of thread heaps (64 each);
  // each frees its neighbour's blocks, then all exit.
  constexpr int kThreads = 150, kBlocks = 100;
  const hak_stats before = stats();
  std::vector<std::vector<void*>> held(kThreads);
  std::barrier sync(kThreads);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocks; ++i) {
        const size_t size = 16 + size_t((t * 37 + i * 11) % 700);
        void* p = hak_malloc(size);
        if (p == nullptr) {
          ++bad;
          continue;
        }
        fill_pattern(p, 16, reinterpret_cast<uintptr_t>(p));
        held[t].push_back(p);
      }
      sync.arrive_and_wait();
      for (void* p : held[(t + 1) % kThreads]) {
        if (!check_pattern(p, 16, reinterpret_cast<uintptr_t>(p))) ++bad;
        hak_free(p);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  const hak_stats after = stats();
  EXPECT_EQ(after.threads_started - before.threads_started, uint64_t(kThreads));
  EXPECT_EQ(after.threads_exited - before.threads_exited, uint64_t(kThreads));
  hak_collect();
  EXPECT_EQ(hak_check(), 0u);
}

TEST(ThreadExit, ExitsRaceWithRemoteFrees) {
  // Producers allocate, publish and exit at once; consumers free the blocks
  // while the producers' slabs are being abandoned.
  constexpr int kRounds = 40;
  constexpr size_t kPerProducer = 400;
  const size_t sizes[] = {80, 208, 1280, 6144};
  uint64_t live_before = 0;
  std::vector<uint64_t> chunks_before;
  for (size_t s : sizes) {
    live_before += class_stats(s).live_blocks;
    chunks_before.push_back(class_stats(s).chunks);
  }

  std::mutex mu;
  std::deque<Block> queue;
  std::atomic<int> producers_left{0};
  std::atomic<size_t> bad{0}, freed{0};
  for (int round = 0; round < kRounds; ++round) {
    producers_left = 2;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (size_t i = 0; i < kPerProducer; ++i) {
          const size_t s = sizes[(i + t) % 4];
          void* p = hak_malloc(s);
          if (p == nullptr) continue;
          fill_pattern(p, s, reinterpret_cast<uintptr_t>(p));
          std::lock_guard<std::mutex> lock(mu);
          queue.push_back({p, s});
        }
        producers_left.fetch_sub(1);
      });
    }
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        for (;;) {
          Block b{nullptr, 0};
          {
            std::lock_guard<std::mutex> lock(mu);
            if (!queue.empty()) {
              b = queue.front();
              queue.pop_front();
            }
          }
          if (b.p == nullptr) {
            if (producers_left.load() == 0) {
              std::lock_guard<std::mutex> lock(mu);
              if (queue.empty()) return;
            }
            std::this_thread::yield();
            continue;
          }
          if (!check_pattern(b.p, b.size, reinterpret_cast<uintptr_t>(b.p))) ++bad;
          hak_free(b.p);
          ++freed;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(freed.load(), kRounds * 2 * kPerProducer);
  hak_collect();
  uint64_t live_after = 0;
  for (size_t s : sizes) live_after += class_stats(s).live_blocks;
  EXPECT_EQ(live_after, live_before) << "a remote free was lost";
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_LE(class_stats(sizes[i]).chunks, chunks_before[i] + 4) << "memory not reused: " << sizes[i];
  }
  EXPECT_EQ(hak_check(), 0u);
}

}  // namespace
}  // namespace hakmem
