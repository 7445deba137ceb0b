// Where slabs come from (core/heap/slab_source.cc): a size class grows by whole
// chunks, without bound, while several threads allocate from it at once —
// the failure the project started from was a fixed 32-slab SuperSlab that
// ran out under 4 threads. Also HAKMEM_LOG expansion lines and
// HAKMEM_PREWARM.
//
// Each test uses its own size classes, so the statistics of one test are not
// disturbed by another in the same process.
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/meta/chunk.h"
#include "core/alloc/process.h"
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

constexpr unsigned kThreads = 4;

// Blocks of one class a slab/chunk can hold (slab 0 is shortened by the header).
size_t blocks_per_chunk(size_t block) {
  return (kChunkSize - kChunkHeaderSize) / block;
}

// Walks the class's chunk list and checks invariant I1 and the geometry.
void expect_chunk_list_sound(unsigned cls) {
  ClassHead& head = g_process.slabs.head(cls);
  uint64_t n = 0;
  bool current_found = false;
  Chunk* current = head.chunks.current();
  for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
    ASSERT_LT(n, uint64_t{1} << 20) << "chunk list does not end";
    // The header lies in the chunk's first page; the chunk is the 2 MiB
    // granule around it, and the header is found from any address in it.
    const uintptr_t base = reinterpret_cast<uintptr_t>(c) & ~kChunkMask;
    EXPECT_LT(reinterpret_cast<uintptr_t>(c) - base, kPageSize);
    EXPECT_EQ(chunk_of(reinterpret_cast<void*>(base + kChunkSize - 1)), c);
    EXPECT_EQ(c->size_class, cls);
    EXPECT_EQ(c->block_size, class_to_size(cls));
    EXPECT_EQ(head.chunks.position(c), n) << "positions must count up from 0";
    EXPECT_EQ(g_registry.kind_of(c), kGranuleChunk);
    EXPECT_EQ(g_registry.kind_of(reinterpret_cast<void*>(base + kChunkSize - 1)), kGranuleChunk);
    EXPECT_EQ(c->free_slabs.snapshot() & c->adoptable_slabs.snapshot(), 0u);
    if (c == current) current_found = true;
    ++n;
  }
  EXPECT_EQ(n, head.chunks.count()) << "count must equal the chunks linked";
  if (n > 0) EXPECT_TRUE(current_found) << "current must be a linked chunk";
}

// Every block distinct and non-overlapping.
void expect_disjoint(std::vector<void*> blocks, size_t block_size) {
  std::sort(blocks.begin(), blocks.end());
  for (size_t i = 1; i < blocks.size(); ++i) {
    ASSERT_GE(reinterpret_cast<uintptr_t>(blocks[i]) - reinterpret_cast<uintptr_t>(blocks[i - 1]),
              block_size)
        << "blocks " << blocks[i - 1] << " and " << blocks[i] << " overlap";
  }
}

TEST(SlabSource, OneClassGrowsPastThirtyTwoSlabsUnderFourThreads) {
  constexpr size_t kSize = 1000;  // class 1024
  constexpr size_t kPerThread = 3000;
  const unsigned cls = size_to_class(kSize);
  const size_t block = class_to_size(cls);
  ASSERT_EQ(class_stats(kSize).chunks, 0u) << "class already used by another test";

  std::vector<std::vector<void*>> held(kThreads);
  std::barrier sync(kThreads + 1);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto& mine = held[t];
      mine.reserve(kPerThread);
      for (size_t i = 0; i < kPerThread; ++i) {
        void* p = hak_malloc(kSize);
        if (p == nullptr) break;
        fill_pattern(p, kSize, reinterpret_cast<uintptr_t>(p));
        mine.push_back(p);
      }
      sync.arrive_and_wait();  // 1: everything allocated
      sync.arrive_and_wait();  // 2: the main thread looked at the statistics
      // Free the next thread's blocks: remote frees into live owners' slabs.
      for (void* p : held[(t + 1) % kThreads]) hak_free(p);
      sync.arrive_and_wait();  // 3: every block freed; now exit
    });
  }
  sync.arrive_and_wait();  // 1
  std::vector<void*> all;
  for (auto& v : held) {
    EXPECT_EQ(v.size(), kPerThread) << "an allocation failed";
    all.insert(all.end(), v.begin(), v.end());
  }
  const hak_class_stats during = class_stats(kSize);
  const size_t total = kThreads * kPerThread;
  EXPECT_GT(during.chunks, 1u);
  EXPECT_GE(during.chunks, total / blocks_per_chunk(block));
  EXPECT_GT(during.slabs_in_use, 32u);
  EXPECT_GE(during.slabs_in_use, total / (kSlabSize / block));
  EXPECT_EQ(during.live_blocks, total);
  EXPECT_LE(during.slabs_in_use, during.chunks * kSlabsPerChunk);
  expect_disjoint(all, block);
  size_t intact = 0;
  for (void* p : all) intact += check_pattern(p, kSize, reinterpret_cast<uintptr_t>(p));
  EXPECT_EQ(intact, all.size()) << "block contents were overwritten";
  for (void* p : all) {
    EXPECT_TRUE(hak_owns(p));
    EXPECT_EQ(chunk_of(p)->size_class, cls);
  }
  expect_chunk_list_sound(cls);
  sync.arrive_and_wait();  // 2
  sync.arrive_and_wait();  // 3
  for (auto& th : threads) th.join();

  const hak_class_stats after = class_stats(kSize);
  EXPECT_EQ(after.remote_frees, total);
  EXPECT_EQ(after.live_blocks, 0u);
  EXPECT_EQ(after.slabs_in_use, 0u) << "exited threads' empty slabs must be released";
  EXPECT_EQ(after.chunks, during.chunks);
  EXPECT_EQ(hak_check(), 0u);

  // The memory is reused: the same amount again needs no new chunk.
  std::vector<void*> again;
  for (size_t i = 0; i < total; ++i) again.push_back(hak_malloc(kSize));
  EXPECT_EQ(class_stats(kSize).chunks, during.chunks);
  for (void* p : again) hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(SlabSource, ThreadsRacingToExpandAFreshClassLinkEveryChunkOnce) {
  constexpr size_t kSize = 8000;  // class 8192: 8 blocks per slab
  constexpr size_t kPerThread = 700;
  const unsigned cls = size_to_class(kSize);
  const size_t block = class_to_size(cls);
  ASSERT_EQ(class_stats(kSize).chunks, 0u);

  for (int round = 0; round < 3; ++round) {
    std::vector<std::vector<void*>> held(kThreads);
    std::barrier sync(kThreads);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        sync.arrive_and_wait();  // start together, so expansions race
        for (size_t i = 0; i < kPerThread; ++i) {
          void* p = hak_malloc(kSize);
          if (p == nullptr) break;
          *static_cast<uintptr_t*>(p) = reinterpret_cast<uintptr_t>(p) ^ t;
          held[t].push_back(p);
        }
      });
    }
    for (auto& th : threads) th.join();
    std::vector<void*> all;
    for (unsigned t = 0; t < kThreads; ++t) {
      ASSERT_EQ(held[t].size(), kPerThread);
      for (void* p : held[t]) {
        ASSERT_EQ(*static_cast<uintptr_t*>(p), reinterpret_cast<uintptr_t>(p) ^ t);
      }
      all.insert(all.end(), held[t].begin(), held[t].end());
    }
    expect_disjoint(all, block);
    const hak_class_stats st = class_stats(kSize);
    const size_t slabs_needed = (kThreads * kPerThread + kSlabSize / block - 1) / (kSlabSize / block);
    EXPECT_GE(st.chunks, (slabs_needed + kSlabsPerChunk - 1) / kSlabsPerChunk);
    // Racing threads may each map a chunk, but none is lost or wasted beyond
    // one per thread and round.
    EXPECT_LE(st.chunks, slabs_needed / kSlabsPerChunk + 1 + kThreads * (round + 1));
    // Abandoned slabs (their owners exited) still count as in use.
    EXPECT_GE(st.slabs_in_use, slabs_needed);
    EXPECT_EQ(st.live_blocks, all.size());
    expect_chunk_list_sound(cls);
    EXPECT_EQ(hak_check(), 0u);
    for (void* p : all) hak_free(p);
    hak_collect();
    EXPECT_EQ(class_stats(kSize).slabs_in_use, 0u);
    EXPECT_EQ(class_stats(kSize).live_blocks, 0u);
  }
  EXPECT_EQ(hak_check(), 0u);
}

TEST(SlabSource, ManyClassesGrowAtOnce) {
  // Every thread walks all classes from 2 KiB to 32 KiB in a different order,
  // so expansions of different classes interleave.
  const unsigned first = size_to_class(2049), last = size_to_class(kMaxSmallSize);
  std::vector<std::thread> threads;
  std::vector<std::vector<void*>> held(kThreads);
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (unsigned k = 0; k <= last - first; ++k) {
        const unsigned cls = first + (k + t * 3) % (last - first + 1);
        const size_t size = class_to_size(cls);
        for (size_t i = 0; i < (2 << 20) / size; ++i) {
          void* p = hak_malloc(size);
          if (p == nullptr) return;
          static_cast<char*>(p)[size - 1] = char(cls);
          held[t].push_back(p);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (unsigned cls = first; cls <= last; ++cls) {
    expect_chunk_list_sound(cls);
    EXPECT_GE(g_process.slabs.head(cls).chunks.count(), 4u) << "class " << cls;
  }
  for (auto& v : held) {
    for (void* p : v) {
      const unsigned cls = chunk_of(p)->size_class;
      ASSERT_EQ(static_cast<char*>(p)[class_to_size(cls) - 1], char(cls));
      hak_free(p);
    }
  }
  hak_collect();
  EXPECT_EQ(hak_check(), 0u);
}

// ---- HAKMEM_LOG=1: one line per expansion (run in a fresh process).

constexpr size_t kLogSize = 2048;

HAKMEM_CHILD(expansion_log) {
  constexpr size_t kPerThread = 1500;  // 6000 blocks of 2 KiB: about 6 chunks
  std::vector<std::vector<void*>> held(kThreads);
  std::barrier sync(kThreads);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      sync.arrive_and_wait();
      for (size_t i = 0; i < kPerThread; ++i) held[t].push_back(hak_malloc(kLogSize));
      sync.arrive_and_wait();
      for (void* p : held[t]) hak_free(p);
    });
  }
  for (auto& th : threads) th.join();
  for (auto& v : held) {
    for (void* p : v) CHILD_CHECK(p != nullptr);
  }
  CHILD_CHECK(hak_check() == 0);
  printf("chunks=%llu\n", (unsigned long long)class_stats(kLogSize).chunks);
  return 0;
}

TEST(SlabSource, LogShowsEachExpansion) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("expansion_log", {"HAKMEM_LOG=1"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  unsigned long long chunks = 0;
  ASSERT_EQ(sscanf(r.out.c_str(), "chunks=%llu", &chunks), 1) << r.describe();
  EXPECT_GE(chunks, 4u) << r.describe();
  const unsigned cls = size_to_class(kLogSize);
  const std::string prefix =
      "hakmem: class " + std::to_string(cls) + " (" + std::to_string(kLogSize) + " B): ";
  EXPECT_EQ(hakmem_test::count_occurrences(r.err, prefix + "1 chunk\n"), 1u) << r.err;
  for (unsigned long long n = 2; n <= chunks; ++n) {
    EXPECT_EQ(hakmem_test::count_occurrences(r.err, prefix + std::to_string(n) + " chunks\n"), 1u)
        << "expansion to " << n << " chunks\n" << r.err;
  }
  EXPECT_EQ(hakmem_test::count_occurrences(r.err, prefix), chunks) << r.err;
}

TEST(SlabSource, NoLogByDefault) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("expansion_log", {});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.err.find("hakmem: class"), std::string::npos) << r.err;
}

// ---- HAKMEM_PREWARM=size:chunks,...: chunks mapped at initialisation.

HAKMEM_CHILD(prewarm) {
  // The hak_ API initialises hakmem on first use (with the malloc overrides
  // that is the process's first allocation).
  void* first = hak_malloc(16);
  CHILD_CHECK(first != nullptr);
  hak_class_stats big = class_stats(4096), small = class_stats(100);
  printf("4096: %llu chunks, 100: %llu chunks\n", (unsigned long long)big.chunks,
         (unsigned long long)small.chunks);
  CHILD_CHECK(big.chunks == 3);
  CHILD_CHECK(small.chunks == 2);
  CHILD_CHECK(big.slabs_in_use == 0);
  CHILD_CHECK(small.slabs_in_use == 0);
  hak_stats st;
  st.version = HAK_STATS_VERSION;
  CHILD_CHECK(hak_get_stats(&st) == 0);
  // 3 + 2 prewarmed, 1 for the first block; 4 MiB is not a small or medium size.
  uint64_t total = 0;
  for (unsigned c = 0; c < st.num_classes; ++c) total += st.classes[c].chunks;
  CHILD_CHECK(total == 6);
  CHILD_CHECK(st.bytes_mapped >= 6 * kChunkSize);
  // 90 slabs of 4 KiB blocks fit in the 3 prewarmed chunks: no expansion.
  std::vector<void*> blocks;
  for (int i = 0; i < 90 * 16 - 2; ++i) {
    void* p = hak_malloc(4096);
    CHILD_CHECK(p != nullptr);
    blocks.push_back(p);
  }
  CHILD_CHECK(class_stats(4096).chunks == 3);
  CHILD_CHECK(class_stats(4096).slabs_in_use >= 89);
  for (void* p : blocks) hak_free(p);
  hak_free(first);
  CHILD_CHECK(hak_check() == 0);
  return 0;
}

TEST(SlabSource, PrewarmMapsChunksAtStart) {
  const hakmem_test::ChildResult r = hakmem_test::run_child(
      "prewarm", {"HAKMEM_PREWARM=4096:3,100:2,4194304:4", "HAKMEM_LOG=1"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  const std::string prefix = "hakmem: class " + std::to_string(size_to_class(4096)) + " (4096 B): ";
  EXPECT_EQ(hakmem_test::count_occurrences(r.err, prefix), 3u) << r.err;
  EXPECT_NE(r.err.find(prefix + "3 chunks\n"), std::string::npos) << r.err;
}

HAKMEM_CHILD(no_prewarm) {
  CHILD_CHECK(hak_malloc(16) != nullptr);
  CHILD_CHECK(class_stats(4096).chunks == 0);
  return 0;
}

TEST(SlabSource, NoPrewarmByDefault) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("no_prewarm", {});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
}  // namespace hakmem
