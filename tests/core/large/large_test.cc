// Large blocks (core/large/large.cc): requests above kMaxMediumSize (1 MiB)
// get their own mapping;
// freed mappings are cached (up to HAKMEM_LARGE_CACHE_MB) and reused.
#include <errno.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "tests/support/pattern.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::check_pattern;
using hakmem_test::fill_pattern;
using hakmem_test::stats;

constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;

// All zero iff the first byte is and every byte equals its successor.
bool all_zero(const void* p, size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

std::vector<size_t> large_sizes() {
  std::vector<size_t> sizes;
  for (size_t s = 2 * kMiB; s <= 64 * kMiB; s *= 2) {
    sizes.push_back(s - 1);
    sizes.push_back(s);
    sizes.push_back(s + 1);
    sizes.push_back(s + s / 3);
  }
  sizes.push_back(hakmem::kMaxMediumSize + 1);  // the smallest large request
  return sizes;
}

TEST(Large, SizesFrom1MiBTo64MiB) {
  const hak_stats s0 = stats();
  for (size_t size : large_sizes()) {
    void* p = hak_malloc(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << size;
    EXPECT_TRUE(hak_owns(p)) << size;
    const size_t usable = hak_usable_size(p);
    EXPECT_GE(usable, size);
    EXPECT_LT(usable, size + 2 * kMiB) << "a large block rounds up to 2 MiB granules at most";
    fill_pattern(p, usable, size);  // the whole usable size is writable
    EXPECT_TRUE(check_pattern(p, usable, size)) << size;
    EXPECT_EQ(stats().large_live_blocks, s0.large_live_blocks + 1);
    hak_free(p);
  }
  EXPECT_EQ(stats().large_live_blocks, s0.large_live_blocks);
  EXPECT_EQ(stats().large_live_bytes, s0.large_live_bytes);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(Large, ManyLiveAtOnceKeepTheirContents) {
  std::vector<void*> blocks;
  const std::vector<size_t> sizes = large_sizes();
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] > 8 * kMiB) continue;
    void* p = hak_malloc(sizes[i]);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, sizes[i], i);
    blocks.push_back(p);
  }
  size_t k = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] > 8 * kMiB) continue;
    EXPECT_TRUE(check_pattern(blocks[k], sizes[i], i)) << sizes[i];
    hak_free(blocks[k++]);
  }
}

// The cache's behaviour depends on what earlier frees left in it, so these
// run in a fresh process whose cache starts empty.
HAKMEM_CHILD(cache_reuse) {
  for (size_t size : {1 * kMiB + 1, 2 * kMiB, 5 * kMiB + 3, 30 * kMiB}) {
    void* p = hak_malloc(size);
    CHILD_CHECK(p != nullptr);
    memset(p, 0x11, size);
    const hak_stats before_free = stats();
    hak_free(p);
    const hak_stats cached = stats();
    printf("size %zu: cached %llu -> %llu\n", size,
           (unsigned long long)before_free.large_cached_bytes,
           (unsigned long long)cached.large_cached_bytes);
    CHILD_CHECK(cached.large_cached_bytes > before_free.large_cached_bytes);
    CHILD_CHECK(cached.bytes_mapped == before_free.bytes_mapped);  // still mapped
    void* q = hak_malloc(size);
    CHILD_CHECK(q == p);  // same size reuses the cached mapping
    CHILD_CHECK(stats().bytes_mapped == before_free.bytes_mapped);
    CHILD_CHECK(stats().large_cached_bytes == before_free.large_cached_bytes);
    hak_free(q);
  }
  // A request needing the same number of 2 MiB granules reuses it too.
  void* p = hak_malloc(1 * kMiB + 1);
  hak_free(p);
  void* q = hak_malloc(1 * kMiB + 512 * kKiB);
  CHILD_CHECK(q == p);
  hak_free(q);

  // calloc of a reused (dirty) mapping is zeroed.
  for (size_t size : {1 * kMiB + 100 * kKiB, 2 * kMiB, 3 * kMiB + 5, 9 * kMiB}) {
    void* a = hak_malloc(size);
    CHILD_CHECK(a != nullptr);
    memset(a, 0xab, size);
    hak_free(a);
    const uint64_t cached = stats().large_cached_bytes;
    void* z = hak_calloc(1, size);
    CHILD_CHECK(z == a);
    CHILD_CHECK(stats().large_cached_bytes < cached);  // it came from the cache
    CHILD_CHECK(all_zero(z, size));
    hak_free(z);
  }
  return 0;
}

TEST(Large, FreedBlocksAreReusedFromTheCache) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("cache_reuse", {"HAKMEM_PURGE_MS=0"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(Large, CacheIsBoundedAndBigBlocksAreUnmapped) {
  // Default HAKMEM_LARGE_CACHE_MB is 64.
  void* big = hak_malloc(100 * kMiB);
  ASSERT_NE(big, nullptr);
  static_cast<char*>(big)[100 * kMiB - 1] = 1;
  const hak_stats s0 = stats();
  hak_free(big);
  const hak_stats s1 = stats();
  EXPECT_LE(s1.large_cached_bytes, 64 * kMiB);
  EXPECT_LE(s1.bytes_mapped + 100 * kMiB, s0.bytes_mapped) << "100 MiB must be unmapped";
  // Fill the cache beyond its limit.
  std::vector<void*> blocks;
  for (int i = 0; i < 12; ++i) blocks.push_back(hak_malloc(9 * kMiB));
  for (void* p : blocks) hak_free(p);
  EXPECT_LE(stats().large_cached_bytes, 64 * kMiB);
  EXPECT_GT(stats().large_cached_bytes, 32 * kMiB);
}

TEST(Large, ReallocKeepsContents) {
  // large -> larger (moves or grows in place), large -> smaller, -> small.
  void* p = hak_malloc(200 * kKiB);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 200 * kKiB, 1);
  p = hak_realloc(p, 1 * kMiB + 100);  // within the mapping's first granule
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(check_pattern(p, 200 * kKiB, 1));
  EXPECT_GE(hak_usable_size(p), 1 * kMiB + 100);
  fill_pattern(p, 1 * kMiB + 100, 2);
  void* before = p;
  p = hak_realloc(p, 40 * kMiB);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(check_pattern(p, 1 * kMiB + 100, 2)) << "moved from " << before << " to " << p;
  EXPECT_GE(hak_usable_size(p), 40 * kMiB);
  fill_pattern(p, 40 * kMiB, 3);
  for (size_t step = 41; step < 60; step += 3) {  // stepwise growth
    p = hak_realloc(p, step * kMiB);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(check_pattern(p, 40 * kMiB, 3)) << step;
  }
  before = p;
  p = hak_realloc(p, 3 * kMiB);  // shrink: stays
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p, before);
  EXPECT_TRUE(check_pattern(p, 3 * kMiB, 3));
  p = hak_realloc(p, 20 * kKiB);  // to a small block
  ASSERT_NE(p, nullptr);
  EXPECT_LE(hak_usable_size(p), hakmem::kMaxSmallSize);
  EXPECT_TRUE(check_pattern(p, 20 * kKiB, 3));
  p = hak_realloc(p, 5 * kMiB);  // and back
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(check_pattern(p, 20 * kKiB, 3));
  hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(Large, FailedReallocKeepsTheBlock) {
  void* p = hak_malloc(3 * kMiB);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 3 * kMiB, 9);
  errno = 0;
  EXPECT_EQ(hak_realloc(p, SIZE_MAX - 4096), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(hak_realloc(p, size_t{1} << 50), nullptr);
  EXPECT_TRUE(hak_owns(p));
  EXPECT_TRUE(check_pattern(p, 3 * kMiB, 9));
  hak_free(p);
}

TEST(Large, AlignedLargeBlocks) {
  for (size_t align = 8 * kKiB; align <= 16 * kMiB; align *= 2) {
    for (size_t size : {size_t{1}, 100 * kKiB, 3 * kMiB}) {
      void* p = hak_aligned_alloc(align, size);
      ASSERT_NE(p, nullptr) << align << " " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align << " " << size;
      EXPECT_GE(hak_usable_size(p), size);
      EXPECT_TRUE(hak_owns(p));
      fill_pattern(p, size, align);
      EXPECT_TRUE(check_pattern(p, size, align));
      void* q = hak_realloc(p, size + 5 * kMiB);
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(check_pattern(q, size, align));
      hak_free(q);
    }
  }
  EXPECT_EQ(hak_check(), 0u);
}

TEST(Large, ConcurrentAllocAndFree) {
  // Threads allocate and free large blocks of mixed sizes, some freed by
  // another thread, contending on the mapping cache.
  constexpr int kThreads = 4, kOps = 300;
  const hak_stats s0 = stats();
  std::atomic<void*> exchange[kThreads] = {};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::pair<void*, size_t>> mine;
      for (int i = 0; i < kOps; ++i) {
        const size_t size = 33 * kKiB + rng() % (6 * kMiB);
        void* p = hak_malloc(size);
        if (p == nullptr) {
          ++bad;
          continue;
        }
        // Stamp the first and last word and one word per 256 KiB.
        for (size_t off = 0; off + 8 <= size; off += 256 * kKiB) {
          *reinterpret_cast<uintptr_t*>(static_cast<char*>(p) + off) = uintptr_t(p) ^ off;
        }
        memcpy(static_cast<char*>(p) + size - 8, &size, 8);
        mine.emplace_back(p, size);
        if (mine.size() > 6 || rng() % 3 == 0) {
          auto [q, qsize] = mine[rng() % mine.size()];
          std::erase(mine, std::make_pair(q, qsize));
          for (size_t off = 0; off + 8 <= qsize; off += 256 * kKiB) {
            if (*reinterpret_cast<uintptr_t*>(static_cast<char*>(q) + off) != (uintptr_t(q) ^ off)) ++bad;
          }
          size_t tail;
          memcpy(&tail, static_cast<char*>(q) + qsize - 8, 8);
          if (tail != qsize) ++bad;
          // Hand every other block to the next thread to free.
          if (rng() % 2) {
            *static_cast<size_t*>(q) = qsize;
            void* old = exchange[(t + 1) % kThreads].exchange(q);
            if (old != nullptr) hak_free(old);
          } else {
            hak_free(q);
          }
        }
      }
      for (auto& [q, qsize] : mine) hak_free(q);
    });
  }
  for (auto& th : threads) th.join();
  for (auto& e : exchange) {
    if (void* p = e.load()) hak_free(p);
  }
  EXPECT_EQ(bad.load(), 0);
  const hak_stats s1 = stats();
  EXPECT_EQ(s1.large_live_blocks, s0.large_live_blocks);
  EXPECT_EQ(s1.large_live_bytes, s0.large_live_bytes);
  EXPECT_LE(s1.large_cached_bytes, 64 * kMiB);
  EXPECT_EQ(hak_check(), 0u);
}

HAKMEM_CHILD(no_large_cache) {
  hak_free(hak_malloc(1));
  const hak_stats s0 = stats();
  void* p = hak_malloc(2 * kMiB);
  CHILD_CHECK(p != nullptr);
  CHILD_CHECK(stats().bytes_mapped > s0.bytes_mapped);
  hak_free(p);
  const hak_stats s1 = stats();
  CHILD_CHECK(s1.large_cached_bytes == 0);
  CHILD_CHECK(s1.bytes_mapped == s0.bytes_mapped);
  return 0;
}

TEST(Large, CacheCanBeDisabled) {
  const hakmem_test::ChildResult r =
      hakmem_test::run_child("no_large_cache", {"HAKMEM_LARGE_CACHE_MB=0", "HAKMEM_PURGE_MS=0"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
