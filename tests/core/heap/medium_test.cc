// Medium blocks (core/meta/size_classes.h, chunk.h; core/heap/slab_source.cc):
// requests above 32 KiB up to kMaxMediumSize (1 MiB) are served from runs of
// contiguous slabs inside chunks of their class, not from a mapping each.
// A run is claimed with one AND of its mask on the chunk's free bitmap and
// released with one OR; to the thread heaps it is a slab of its class, so
// local and remote frees, adoption and statistics are those of small blocks.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/chunk.h"
#include "core/meta/size_classes.h"
#include "tests/support/pattern.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

using hakmem::any_size_to_class;
using hakmem::class_run_slabs;
using hakmem::class_to_size;
using hakmem::kChunkSize;
using hakmem::kMaxMediumSize;
using hakmem::kMaxSmallSize;
using hakmem::kMediumAlign;
using hakmem::kNumClasses;
using hakmem::kNumSmallClasses;
using hakmem::kSlabSize;
using hakmem_test::check_pattern;
using hakmem_test::class_stats;
using hakmem_test::fill_pattern;
using hakmem_test::stats;

constexpr size_t kKiB = 1024;

uint64_t mapped() { return stats().bytes_mapped; }
uintptr_t chunk_base_of(const void* p) { return reinterpret_cast<uintptr_t>(p) & ~(kChunkSize - 1); }

// The acceptance test: a 40 KiB malloc maps no new 2 MiB granule
// when a chunk of its class has free slabs.
TEST(Medium, FortyKiBMallocMapsNoNewGranuleWhenAChunkHasFreeSlabs) {
  // The first 40 KiB block of the process may map its class's first chunk;
  // that chunk then has free runs.
  void* first = hak_malloc(40 * kKiB);
  ASSERT_NE(first, nullptr);
  const hak_stats s0 = stats();
  const hak_class_stats c0 = class_stats(40 * kKiB);
  ASSERT_GE(c0.chunks, 1u);

  // Another thread (another heap) claims a free run of that chunk.
  void* other = nullptr;
  std::thread([&other] { other = hak_malloc(40 * kKiB); }).join();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(mapped(), s0.bytes_mapped) << "a 40 KiB malloc mapped memory although its chunk had free slabs";
  EXPECT_EQ(chunk_base_of(other), chunk_base_of(first)) << "served from the same chunk";

  // This thread fills its run and claims the next ones, still in the chunk:
  // runs of 2 slabs hold 3 blocks of 40 KiB, 16 runs per chunk, one taken by
  // the other thread.
  std::vector<void*> blocks;
  const unsigned per_run = unsigned(class_run_slabs(any_size_to_class(40 * kKiB)) * kSlabSize / (40 * kKiB));
  for (unsigned i = 0; i < 4 * per_run; ++i) {
    void* p = hak_malloc(40 * kKiB);
    ASSERT_NE(p, nullptr);
    memset(p, 0x5a, 40 * kKiB);
    blocks.push_back(p);
  }
  EXPECT_EQ(mapped(), s0.bytes_mapped) << "filling runs of a chunk with free runs mapped memory";
  EXPECT_EQ(class_stats(40 * kKiB).chunks, c0.chunks);
  EXPECT_EQ(stats().large_live_blocks, s0.large_live_blocks) << "no medium block is a large mapping";
  for (void* p : blocks) {
    EXPECT_TRUE(hak_owns(p));
    EXPECT_EQ(hak_usable_size(p), 40 * kKiB);
  }
  EXPECT_EQ(hak_check(), 0u);
  for (void* p : blocks) hak_free(p);
  hak_free(other);  // a remote free: the other thread has exited
  hak_free(first);
  EXPECT_EQ(hak_check(), 0u);
}

// A freed block is reused by the same thread at once: no mapping, no purge.
TEST(Medium, FreedBlockIsReusedByTheSameThreadWithoutASystemCall) {
  for (size_t size : {40 * kKiB, 100 * kKiB, 300 * kKiB, kMaxMediumSize}) {
    void* p = hak_malloc(size);
    ASSERT_NE(p, nullptr) << size;
    memset(p, 1, size);
    hak_free(p);
    const hak_stats s0 = stats();
    std::set<void*> seen;
    for (int round = 0; round < 100; ++round) {
      void* q = hak_malloc(size);
      ASSERT_NE(q, nullptr);
      seen.insert(q);
      hak_free(q);
    }
    // The same few blocks come back (those the heap's lists held), no new
    // ones from the OS.
    EXPECT_LE(seen.size(), 8u) << size;
    const hak_stats s1 = stats();
    EXPECT_EQ(s1.bytes_mapped, s0.bytes_mapped) << size;
    EXPECT_EQ(s1.bytes_purged, s0.bytes_purged) << size;
    EXPECT_EQ(s1.large_unmapped_bytes, s0.large_unmapped_bytes) << size;
  }
}

// Every medium class boundary: size, usable size, alignment, contents,
// ownership, interior pointers, realloc and the checker.
TEST(Medium, EveryClassBoundary) {
  std::vector<std::pair<void*, size_t>> live;
  for (unsigned cls = kNumSmallClasses; cls < kNumClasses; ++cls) {
    const size_t block = class_to_size(cls);
    for (size_t size : {block - 1, block, block + 1}) {
      if (size <= kMaxSmallSize) continue;
      void* p = hak_malloc(size);
      ASSERT_NE(p, nullptr) << size;
      const size_t usable = hak_usable_size(p);
      if (size <= kMaxMediumSize) {
        EXPECT_EQ(usable, class_to_size(any_size_to_class(size))) << size;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kMediumAlign, 0u) << size;
        EXPECT_EQ(hak_owns(static_cast<char*>(p) + 16), 0) << "interior pointer, size " << size;
        EXPECT_EQ(hak_owns(static_cast<char*>(p) + usable - kMediumAlign), 0) << size;
      } else {
        EXPECT_GE(usable, size) << "large";
      }
      EXPECT_TRUE(hak_owns(p)) << size;
      fill_pattern(p, usable, size);
      live.emplace_back(p, size);
    }
  }
  EXPECT_EQ(hak_check(), 0u);
  for (auto& [p, size] : live) {
    EXPECT_TRUE(check_pattern(p, hak_usable_size(p), size)) << size;
    // Grow across classes keeping the contents.
    void* q = hak_realloc(p, size + 100 * kKiB);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(check_pattern(q, size, size)) << "realloc kept the contents, size " << size;
    p = q;
  }
  for (auto& [p, size] : live) hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

// Aligned requests of medium sizes up to kMediumAlign are medium blocks.
TEST(Medium, AlignedRequests) {
  for (size_t align : {size_t{16}, size_t{64}, size_t{4096}, kMediumAlign}) {
    for (size_t size : {33 * kKiB, 100 * kKiB, kMaxMediumSize}) {
      void* p = nullptr;
      ASSERT_EQ(hak_posix_memalign(&p, align, size), 0) << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << size << " " << align;
      EXPECT_EQ(hak_usable_size(p), class_to_size(any_size_to_class(size))) << "medium, " << size;
      memset(p, 3, size);
      hak_free(p);
    }
  }
  // Above kMediumAlign the block comes from the large path, aligned.
  void* p = nullptr;
  ASSERT_EQ(hak_posix_memalign(&p, 2 * kMediumAlign, 100 * kKiB), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2 * kMediumAlign), 0u);
  hak_free(p);
}

// Cross-thread frees of medium blocks go through the remote-free protocol of
// small ones; the owner reuses what others freed, and the books balance.
TEST(Medium, RemoteFreesAreReusedByTheOwner) {
  constexpr size_t kSize = 200 * kKiB;
  const hak_class_stats c0 = class_stats(kSize);
  std::vector<void*> blocks;
  for (int i = 0; i < 24; ++i) {
    void* p = hak_malloc(kSize);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, kSize, uint64_t(i));
    blocks.push_back(p);
  }
  EXPECT_EQ(class_stats(kSize).live_blocks, c0.live_blocks + 24);
  std::thread([&blocks] {
    for (size_t i = 0; i < blocks.size(); ++i) {
      EXPECT_TRUE(check_pattern(blocks[i], kSize, uint64_t(i)));
      hak_free(blocks[i]);
    }
  }).join();
  const uint64_t mapped_before = mapped();
  std::set<void*> freed(blocks.begin(), blocks.end());
  unsigned reused = 0;
  std::vector<void*> again;
  for (int i = 0; i < 24; ++i) {
    void* p = hak_malloc(kSize);
    ASSERT_NE(p, nullptr);
    reused += freed.count(p) ? 1 : 0;
    again.push_back(p);
  }
  EXPECT_EQ(reused, 24u) << "the owner reuses every block other threads freed";
  EXPECT_EQ(mapped(), mapped_before);
  EXPECT_EQ(hak_check(), 0u);
  for (void* p : again) hak_free(p);
  EXPECT_EQ(class_stats(kSize).live_blocks, c0.live_blocks) << "every free counted once";
}

// Blocks of a thread that exited are freed by another thread, which adopts
// their runs; after hak_collect no run of the class is in use.
TEST(Medium, BlocksOutliveTheirThread) {
  constexpr size_t kSize = 72 * kKiB;
  const hak_class_stats c0 = class_stats(kSize);
  std::vector<void*> blocks;
  std::thread([&blocks] {
    for (int i = 0; i < 10; ++i) {
      void* p = hak_malloc(kSize);
      fill_pattern(p, kSize, uint64_t(i));
      blocks.push_back(p);
    }
  }).join();
  for (size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_TRUE(check_pattern(blocks[i], kSize, uint64_t(i)));
    hak_free(blocks[i]);
  }
  hak_collect();
  const hak_class_stats c1 = class_stats(kSize);
  EXPECT_EQ(c1.live_blocks, c0.live_blocks);
  EXPECT_EQ(hak_check(), 0u);
}

}  // namespace
