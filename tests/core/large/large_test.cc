// Large blocks (core/large/large.cc): requests above kMaxMediumSize (1 MiB)
// are whole granules of address space; freed ones stay resident as cached
// ranges (budget HAKMEM_LARGE_CACHE_MB), split, coalesced and gathered for
// reuse without page faults.
#include <errno.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "platform/sanitizer.h"
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
  // A budget that holds the 30 MiB block (the default is 16 MiB).
  const hakmem_test::ChildResult r =
      hakmem_test::run_child("cache_reuse", {"HAKMEM_PURGE_MS=0", "HAKMEM_LARGE_CACHE_MB=64"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(Large, CacheIsBoundedAndBigBlocksAreUnmapped) {
  // Default HAKMEM_LARGE_CACHE_MB is 16.
  void* big = hak_malloc(100 * kMiB);
  ASSERT_NE(big, nullptr);
  static_cast<char*>(big)[100 * kMiB - 1] = 1;
  const hak_stats s0 = stats();
  hak_free(big);
  const hak_stats s1 = stats();
  EXPECT_LE(s1.large_cached_bytes, 16 * kMiB);
  EXPECT_LE(s1.bytes_mapped + 100 * kMiB, s0.bytes_mapped) << "100 MiB must be unmapped";
  // Fill the cache beyond its limit.
  std::vector<void*> blocks;
  for (int i = 0; i < 12; ++i) blocks.push_back(hak_malloc(9 * kMiB));
  for (void* p : blocks) hak_free(p);
  EXPECT_LE(stats().large_cached_bytes, 16 * kMiB);
  EXPECT_GT(stats().large_cached_bytes, 8 * kMiB);
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

// After concurrent tests: no large block live, the cache within its budget
// (no decay in this process: HAKMEM_PURGE_MS=0), the heap consistent.
void expect_all_large_blocks_freed(const hak_stats& s0) {
  const hak_stats s1 = stats();
  EXPECT_EQ(s1.large_live_blocks, s0.large_live_blocks);
  EXPECT_EQ(s1.large_live_bytes, s0.large_live_bytes);
  EXPECT_LE(s1.large_cached_bytes, 64 * kMiB);
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
  expect_all_large_blocks_freed(s0);
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


// ---------------------------------------------------------------------------
// Reuse without page faults: split, coalesce, gather, grow in place
// (core/large/large.cc). Each runs in a fresh process whose cache starts
// empty; faults are counted with getrusage (ru_minflt), hakmem's own
// figures with hak_stats.

long minor_faults() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

void touch_pages(void* p, size_t n) {
  for (size_t off = 0; off < n; off += 4096) static_cast<volatile char*>(p)[off] = 1;
}

// Fewer faults than one per 32 pages of `n` bytes: fresh memory costs one
// per page (or one per 2 MiB huge page, 1/512), reused memory none; the
// slack is for the test's own stack and bookkeeping.
bool few_faults(long faults, size_t n) { return faults < long(n / 4096 / 32) + 8; }

// Pages moved to new addresses (gather, mremap) fault nothing in, but a
// sanitizer's shadow of the new addresses does (TSan: two faults per page).
// Under a sanitizer those checks rest on hakmem's own figures (no new
// mapping, cached bytes used) alone.
constexpr bool kShadowFaults = HAKMEM_BUILT_WITH_TSAN || HAKMEM_BUILT_WITH_ASAN ||
                               HAKMEM_BUILT_WITH_HWASAN || HAKMEM_BUILT_WITH_MSAN;
bool few_faults_moved(long faults, size_t n) { return kShadowFaults || few_faults(faults, n); }

uintptr_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

uint64_t now_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

HAKMEM_CHILD(reuse_without_faults) {
  hak_free(hak_malloc(1));
  // A similar size (fewer granules) reuses the freed range's head; its
  // tail stays cached.
  void* p = hak_malloc(8 * kMiB);
  CHILD_CHECK(p != nullptr);
  touch_pages(p, 8 * kMiB);
  hak_free(p);
  const hak_stats s0 = stats();
  const long f0 = minor_faults();
  void* q = hak_malloc(6 * kMiB);
  touch_pages(q, 6 * kMiB);
  const long faults = minor_faults() - f0;
  const hak_stats s1 = stats();
  printf("8 MiB freed, 6 MiB allocated: %ld faults, cached %llu -> %llu\n", faults,
         (unsigned long long)s0.large_cached_bytes, (unsigned long long)s1.large_cached_bytes);
  CHILD_CHECK(q == p);
  CHILD_CHECK(few_faults(faults, 6 * kMiB));
  CHILD_CHECK(s1.bytes_mapped == s0.bytes_mapped);  // no new mapping
  CHILD_CHECK(s1.large_cached_bytes > 0 && s1.large_cached_bytes < s0.large_cached_bytes);
  CHILD_CHECK(hak_usable_size(q) >= 6 * kMiB && hak_usable_size(q) < 8 * kMiB);
  CHILD_CHECK(hak_check() == 0);
  hak_free(q);
  CHILD_CHECK(stats().large_cached_blocks == s0.large_cached_blocks);  // coalesced again
  CHILD_CHECK(stats().large_cached_bytes == s0.large_cached_bytes);

  // A size larger than any one cached range is gathered from several
  // (mremap moves their pages): still no faults, no growth of the mapped
  // total beyond the request.
  std::vector<void*> parts;
  for (int i = 0; i < 4; ++i) {
    parts.push_back(hak_malloc(3 * kMiB));
    touch_pages(parts.back(), 3 * kMiB);
  }
  void* fence[4];
  for (int i = 0; i < 4; ++i) fence[i] = hak_malloc(2 * kMiB);  // live blocks between
  for (void* part : parts) hak_free(part);
  const hak_stats g0 = stats();
  const long g_f0 = minor_faults();
  void* big = hak_malloc(14 * kMiB);
  CHILD_CHECK(big != nullptr);
  touch_pages(big, 14 * kMiB);
  const long g_faults = minor_faults() - g_f0;
  const hak_stats g1 = stats();
  printf("14 MiB from cached ranges of %llu bytes: %ld faults, mapped %llu -> %llu\n",
         (unsigned long long)g0.large_cached_bytes, g_faults, (unsigned long long)g0.bytes_mapped,
         (unsigned long long)g1.bytes_mapped);
  CHILD_CHECK(g0.large_cached_bytes >= 16 * kMiB);
  CHILD_CHECK(few_faults_moved(g_faults, 14 * kMiB));
  CHILD_CHECK(g1.large_cached_bytes + 16 * kMiB <= g0.large_cached_bytes + 2 * kMiB);
  CHILD_CHECK(g1.bytes_mapped <= g0.bytes_mapped + 2 * kMiB);
  CHILD_CHECK(hak_check() == 0);
  auto* z = static_cast<unsigned char*>(hak_calloc(1, 5 * kMiB));  // dirty reuse is zeroed
  CHILD_CHECK(z != nullptr && all_zero(z, 5 * kMiB));
  hak_free(z);
  // The gathered block spans several kernel mappings; growing it moves its
  // pages all the same (mremap granule by granule), contents intact.
  fill_pattern(big, 14 * kMiB, 7);
  const hak_stats m0 = stats();
  big = hak_realloc(big, 60 * kMiB);
  CHILD_CHECK(big != nullptr && check_pattern(big, 14 * kMiB, 7));
  CHILD_CHECK(hak_usable_size(big) >= 60 * kMiB);
  CHILD_CHECK(hak_check() == 0);
  printf("grown to 60 MiB: mapped %llu -> %llu\n", (unsigned long long)m0.bytes_mapped,
         (unsigned long long)stats().bytes_mapped);
  hak_free(big);
  for (void* f : fence) hak_free(f);
  CHILD_CHECK(hak_check() == 0);
  return 0;
}

TEST(LargeReuse, SimilarSizesReuseCachedPagesWithoutFaults) {
  const auto r = hakmem_test::run_child("reuse_without_faults", {"HAKMEM_PURGE_MS=0"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  printf("%s", r.out.c_str());
}

HAKMEM_CHILD(split_and_coalesce) {
  hak_free(hak_malloc(1));
  // One 16 MiB range (8 granules), split into three blocks of 2 granules
  // each, in address order (best fit takes the head of the only range).
  void* x = hak_malloc(16 * kMiB - 4096);
  CHILD_CHECK(x != nullptr);
  const uintptr_t base = addr(x) & ~(2 * kMiB - 1);
  hak_free(x);
  const hak_stats s0 = stats();
  CHILD_CHECK(s0.large_cached_bytes == 16 * kMiB && s0.large_cached_blocks == 1);
  void* a = hak_malloc(3 * kMiB);
  void* b = hak_malloc(3 * kMiB + 1);
  void* c = hak_aligned_alloc(1 * kMiB, 3 * kMiB);  // aligned within its granule
  CHILD_CHECK(a && b && c);
  CHILD_CHECK((addr(a) & ~(2 * kMiB - 1)) == base);
  CHILD_CHECK((addr(b) & ~(2 * kMiB - 1)) == base + 4 * kMiB);
  CHILD_CHECK((addr(c) & ~(2 * kMiB - 1)) == base + 8 * kMiB);
  CHILD_CHECK(addr(c) % kMiB == 0);
  CHILD_CHECK(stats().bytes_mapped == s0.bytes_mapped);
  CHILD_CHECK(stats().large_cached_bytes == 4 * kMiB && stats().large_cached_blocks == 1);
  for (void* p : {a, b, c}) {
    CHILD_CHECK(hak_owns(p));
    CHILD_CHECK(hak_usable_size(p) >= 3 * kMiB && hak_usable_size(p) < 4 * kMiB);
    CHILD_CHECK(!hak_owns(static_cast<char*>(p) + 2 * kMiB));  // interior
  }
  fill_pattern(a, 3 * kMiB, 1);
  fill_pattern(b, 3 * kMiB, 2);
  fill_pattern(c, 3 * kMiB, 3);
  CHILD_CHECK(hak_check() == 0);
  // Freeing b: its neighbours are live, so it is a range of its own.
  hak_free(b);
  CHILD_CHECK(stats().large_cached_blocks == 2 && stats().large_cached_bytes == 8 * kMiB);
  CHILD_CHECK(!hak_owns(b));
  // a coalesces with b after it; c then with both sides.
  hak_free(a);
  CHILD_CHECK(stats().large_cached_blocks == 2 && stats().large_cached_bytes == 12 * kMiB);
  CHILD_CHECK(check_pattern(c, 3 * kMiB, 3));
  CHILD_CHECK(hak_check() == 0);
  hak_free(c);
  CHILD_CHECK(stats().large_cached_blocks == 1 && stats().large_cached_bytes == 16 * kMiB);
  CHILD_CHECK(hak_check() == 0);
  // The whole range again, at its start.
  void* y = hak_malloc(16 * kMiB - 4096);
  CHILD_CHECK(addr(y) == addr(x));
  CHILD_CHECK(stats().large_cached_bytes == 0 && stats().bytes_mapped == s0.bytes_mapped);

  // realloc grows in place into a cached range after the block.
  hak_free(y);
  void* g = hak_malloc(3 * kMiB);
  fill_pattern(g, 3 * kMiB, 4);
  void* g2 = hak_realloc(g, 9 * kMiB);
  CHILD_CHECK(g2 == g);
  CHILD_CHECK(check_pattern(g2, 3 * kMiB, 4));
  CHILD_CHECK(hak_usable_size(g2) >= 9 * kMiB);
  CHILD_CHECK(stats().bytes_mapped == s0.bytes_mapped);
  CHILD_CHECK(stats().large_live_bytes + stats().large_cached_bytes == 16 * kMiB);
  CHILD_CHECK(hak_check() == 0);
  hak_free(g2);
  CHILD_CHECK(stats().large_cached_blocks == 1 && stats().large_cached_bytes == 16 * kMiB);

  // An over-aligned block (user offset of a granule) is not cached; its
  // neighbours' ranges are unaffected.
  void* o = hak_aligned_alloc(4 * kMiB, 3 * kMiB);
  CHILD_CHECK(o != nullptr && addr(o) % (4 * kMiB) == 0);
  CHILD_CHECK(hak_usable_size(o) >= 3 * kMiB);
  const hak_stats o0 = stats();
  hak_free(o);
  CHILD_CHECK(stats().large_cached_bytes == o0.large_cached_bytes);
  CHILD_CHECK(stats().bytes_mapped < o0.bytes_mapped);
  CHILD_CHECK(hak_check() == 0);
  return 0;
}

TEST(LargeReuse, SplitAndCoalesceKeepNeighboursExact) {
  const auto r = hakmem_test::run_child("split_and_coalesce", {"HAKMEM_PURGE_MS=0"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

// The budget: HAKMEM_LARGE_CACHE_MB alone without decay; with decay, also
// what live blocks gave back since their recent peak, returned within the
// decay time.
HAKMEM_CHILD(budget_with_decay) {
  hak_free(hak_malloc(1));
  const hak_stats s0 = stats();
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) {
    blocks.push_back(hak_malloc(16 * kMiB));
    touch_pages(blocks.back(), 16 * kMiB);
  }
  const hak_stats live = stats();
  for (void* p : blocks) hak_free(p);
  const hak_stats freed = stats();
  printf("live %llu, cached after free %llu\n", (unsigned long long)live.large_live_bytes,
         (unsigned long long)freed.large_cached_bytes);
  // At most the recent peak of live bytes plus the 8 MiB budget.
  CHILD_CHECK(freed.large_cached_bytes <= live.large_live_bytes + 8 * kMiB);
  CHILD_CHECK(freed.large_cached_bytes > 8 * kMiB);
  // Reused without new mappings.
  const long f0 = minor_faults();
  void* again = hak_malloc(100 * kMiB);
  touch_pages(again, 100 * kMiB);
  CHILD_CHECK(few_faults_moved(minor_faults() - f0, 100 * kMiB));  // partly gathered
  CHILD_CHECK(stats().bytes_mapped <= freed.bytes_mapped);
  hak_free(again);
  // After the decay time (500 ms, passes every 125 ms) the cache is back
  // within its budget and what stayed unused is unmapped.
  const uint64_t t0 = now_ms();
  hak_stats st = stats();
  while (now_ms() - t0 < 3000) {
    hak_free(hak_malloc(3 * kMiB));  // allocator activity runs the passes
    st = stats();
    if (st.large_cached_bytes <= 8 * kMiB && st.bytes_mapped <= s0.bytes_mapped + 8 * kMiB) break;
    usleep(20 * 1000);
  }
  printf("after %llu ms: cached %llu, mapped %llu (start %llu)\n", (unsigned long long)(now_ms() - t0),
         (unsigned long long)st.large_cached_bytes, (unsigned long long)st.bytes_mapped,
         (unsigned long long)s0.bytes_mapped);
  CHILD_CHECK(st.large_cached_bytes <= 8 * kMiB);
  CHILD_CHECK(st.bytes_mapped <= s0.bytes_mapped + 8 * kMiB);
  return 0;
}

TEST(LargeReuse, BudgetFollowsTheRecentPeakAndDecays) {
  const auto r = hakmem_test::run_child("budget_with_decay",
                                        {"HAKMEM_PURGE_MS=500", "HAKMEM_LARGE_CACHE_MB=8"}, 120);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  printf("%s", r.out.c_str());
}

HAKMEM_CHILD(budget_diet2) {
  hak_free(hak_malloc(1));
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i) blocks.push_back(hak_malloc(16 * kMiB));
  for (void* p : blocks) hak_free(p);
  // No peak allowance under HAKMEM_MEM_DIET=2: the fixed budget only.
  CHILD_CHECK(stats().large_cached_bytes <= 8 * kMiB);
  return 0;
}

TEST(LargeReuse, DietTwoKeepsTheFixedBudget) {
  const auto r = hakmem_test::run_child("budget_diet2", {"HAKMEM_MEM_DIET=2", "HAKMEM_LARGE_CACHE_MB=8"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

// Threads split, coalesce, gather and grow shared ranges at once (TSan
// covers these paths through this test: large_test is tagged stress).
TEST(LargeReuse, ConcurrentSplitCoalesceAndGrowth) {
  constexpr int kThreads = 4, kOps = 200;
  const hak_stats s0 = stats();
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      std::vector<std::pair<char*, size_t>> mine;
      auto stamp = [](char* p, size_t n) {
        for (size_t off = 0; off + 8 <= n; off += 512 * kKiB) {
          const uintptr_t v = uintptr_t(p) ^ off;
          memcpy(p + off, &v, 8);
        }
      };
      auto verify = [&](char* p, size_t n, size_t upto) {
        for (size_t off = 0; off + 8 <= upto && off + 8 <= n; off += 512 * kKiB) {
          uintptr_t v;
          memcpy(&v, p + off, 8);
          if (v != (uintptr_t(p) ^ off)) ++bad;
        }
      };
      for (int i = 0; i < kOps; ++i) {
        const size_t size = kMiB + 1 + rng() % (12 * kMiB);
        char* p = static_cast<char*>(hak_malloc(size));
        if (p == nullptr) {
          ++bad;
          continue;
        }
        stamp(p, size);
        mine.emplace_back(p, size);
        if (rng() % 4 == 0) {  // grow one: in place, by mremap or by copy
          auto& [q, n] = mine[rng() % mine.size()];
          const size_t grown = n + rng() % (6 * kMiB);
          char* g = static_cast<char*>(hak_realloc(q, grown));
          if (g == nullptr) {
            ++bad;
          } else {
            // The old stamps moved with the contents: check, then restamp.
            for (size_t off = 0; off + 8 <= n; off += 512 * kKiB) {
              uintptr_t v;
              memcpy(&v, g + off, 8);
              if (v != (uintptr_t(q) ^ off)) ++bad;
            }
            q = g;
            n = grown;
            stamp(q, n);
          }
        }
        if (mine.size() > 5 || rng() % 3 == 0) {
          const size_t k = rng() % mine.size();
          auto [q, n] = mine[k];
          mine.erase(mine.begin() + long(k));
          verify(q, n, n);
          if (hak_usable_size(q) < n) ++bad;
          hak_free(q);
        }
      }
      for (auto& [q, n] : mine) {
        verify(q, n, n);
        hak_free(q);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  expect_all_large_blocks_freed(s0);
}

}  // namespace
