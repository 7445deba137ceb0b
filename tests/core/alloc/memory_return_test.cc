// Returning memory to the OS (invariant I5; core/heap/slab_source.cc
// SlabSource::release, core/large/large.cc LargeAllocator::free): after a program frees what it
// allocated, its resident size falls, within the documented policy:
//   HAKMEM_MEM_DIET=1 (default) keeps at most HAKMEM_DIRTY_MB (16) MiB of
//   free slabs resident, =2 keeps none, =0 keeps them all.
// The single-threaded scenarios run in fresh processes so that their
// measurements start from a clean allocator.
//
// What is measured is hakmem's own resident memory (hak_stats.bytes_resident:
// mincore over the ranges hakmem mapped), not the process's resident set.
// The process's figure also holds whatever else the process keeps resident,
// and under a sanitizer that is a lot: ASan's shadow of 256 MiB of touched
// blocks alone is 32 MiB, and it stays after the blocks are freed. hakmem's
// own figure means the same in every build, on every kernel. One check
// ties the two: hakmem's pages are part of the process's.
#include <gtest/gtest.h>

#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::stats;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kTotal = 256 * kMiB;
// Measurement slack: chunk headers, the registry's and heaps' pages.
constexpr size_t kSlack = 4 * kMiB;

// hakmem's resident bytes.
size_t resident() { return stats().bytes_resident; }

// Allocates about `total` bytes of small blocks of three sizes, touching
// every byte. `ptrs` must be large enough (see pointers_needed).
size_t pointers_needed(size_t total) { return total / 3 / 64 + total / 3 / 1024 + total / 3 / 16384 + 3; }

size_t allocate_small(size_t total, std::vector<void*>& ptrs, int fill) {
  size_t n = 0;
  for (size_t size : {size_t{64}, size_t{1024}, size_t{16384}}) {
    for (size_t bytes = 0; bytes + size <= total / 3; bytes += size) {
      void* p = hak_malloc(size);
      if (p == nullptr) return n;
      memset(p, fill, size);
      ptrs[n++] = p;
    }
  }
  return n;
}

struct Cycle {
  unsigned long long r0, r1, r2, r3, r4, dirty, mapped1, mapped3, process_rss, stats_process_rss;
};

// One allocate / free-all / allocate / free-all cycle. Prints the numbers.
HAKMEM_CHILD(rss_cycle) {
  std::vector<void*> ptrs(pointers_needed(kTotal), nullptr);  // touched now, not later
  hak_free(hak_malloc(1));  // initialise hakmem before the baseline
  Cycle c{};
  c.r0 = resident();
  const size_t n = allocate_small(kTotal, ptrs, 0x5a);
  c.r1 = resident();
  c.mapped1 = stats().bytes_mapped;
  for (size_t i = 0; i < n; ++i) hak_free(ptrs[i]);
  const hak_stats st = stats();
  c.process_rss = hakmem_test::resident_bytes();
  c.r2 = st.bytes_resident;
  c.dirty = st.bytes_dirty_free;
  c.stats_process_rss = st.process_resident_bytes;
  // The same again reuses the chunks (pages returned to the OS come back).
  const size_t n2 = allocate_small(kTotal, ptrs, 0xa5);
  CHILD_CHECK(n2 == n);
  for (size_t i = 0; i < n2; i += 97) CHILD_CHECK(static_cast<unsigned char*>(ptrs[i])[0] == 0xa5);
  c.r3 = resident();
  c.mapped3 = stats().bytes_mapped;
  for (size_t i = 0; i < n2; ++i) hak_free(ptrs[i]);
  c.r4 = resident();
  CHILD_CHECK(hak_check() == 0);
  printf("%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n", c.r0, c.r1, c.r2, c.r3, c.r4,
         c.dirty, c.mapped1, c.mapped3, c.process_rss, c.stats_process_rss);
  return 0;
}

Cycle run_cycle(const std::vector<std::string>& env) {
  // A cycle touches 512 MiB and returns most of it page by page: about 2 s
  // alone, but well over 25 s (run_child's default bound) under ASan on a
  // loaded machine. The bound only catches a hang.
  constexpr double kChildTimeoutSeconds = 180;
  const hakmem_test::ChildResult r = hakmem_test::run_child("rss_cycle", env, kChildTimeoutSeconds);
  Cycle c{};
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(sscanf(r.out.c_str(), "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &c.r0,
                   &c.r1, &c.r2, &c.r3, &c.r4, &c.dirty, &c.mapped1, &c.mapped3, &c.process_rss,
                   &c.stats_process_rss),
            10)
      << r.describe();
  // Common to every policy: the blocks were resident, and the second round
  // reused the first round's chunks.
  EXPECT_GE(c.r1, c.r0 + kTotal - kSlack);
  EXPECT_EQ(c.mapped3, c.mapped1) << "the second round mapped new chunks";
  EXPECT_GE(c.r3, c.r0 + kTotal - kSlack);
  // hak_stats.process_resident_bytes is the process's resident set, and
  // hakmem's pages are part of it.
  EXPECT_NEAR(double(c.stats_process_rss), double(c.process_rss), double(kMiB));
  EXPECT_LE(c.r2, c.process_rss + kMiB);
  return c;
}

std::string mib(unsigned long long b) { return std::to_string(b / double(kMiB)) + " MiB"; }

// The budget tests measure the instant budget (HAKMEM_DIRTY_MB) alone: the
// decay (HAKMEM_PURGE_MS), which depends on how long a cycle takes, is off
// here; tests/core/heap/purge_test.cc checks it.
TEST(MemoryReturn, DefaultPolicyKeepsAtMostSixteenMiB) {
  const Cycle c = run_cycle({"HAKMEM_PURGE_MS=0"});
  EXPECT_LE(c.dirty, 16 * kMiB);
  EXPECT_GE(c.dirty, 15 * kMiB) << "the budget for quick reuse should be used";
  EXPECT_LE(c.r2, c.r0 + 16 * kMiB + kSlack) << "after free-all: " << mib(c.r2 - c.r0);
  EXPECT_GE(c.r1 - c.r2, kTotal - 16 * kMiB - kSlack);
  EXPECT_LE(c.r4, c.r0 + 16 * kMiB + kSlack) << "after the second free-all: " << mib(c.r4 - c.r0);
}

TEST(MemoryReturn, DietTwoReturnsEveryFreeSlab) {
  const Cycle c = run_cycle({"HAKMEM_MEM_DIET=2"});
  EXPECT_EQ(c.dirty, 0u);
  EXPECT_LE(c.r2, c.r0 + kSlack) << "after free-all: " << mib(c.r2 - c.r0);
  EXPECT_LE(c.r4, c.r0 + kSlack) << "after the second free-all: " << mib(c.r4 - c.r0);
}

TEST(MemoryReturn, TinyMemDietAlias) {
  const Cycle c = run_cycle({"HAKMEM_TINY_MEM_DIET=2"});
  EXPECT_EQ(c.dirty, 0u);
  EXPECT_LE(c.r2, c.r0 + kSlack) << mib(c.r2 - c.r0);
}

TEST(MemoryReturn, LargerDirtyBudget) {
  const Cycle c = run_cycle({"HAKMEM_DIRTY_MB=64", "HAKMEM_PURGE_MS=0"});
  EXPECT_LE(c.dirty, 64 * kMiB);
  EXPECT_GE(c.dirty, 63 * kMiB);
  EXPECT_GE(c.r2, c.r0 + 56 * kMiB) << mib(c.r2 - c.r0);
  EXPECT_LE(c.r2, c.r0 + 64 * kMiB + kSlack) << mib(c.r2 - c.r0);
}

// The control: with returning disabled the resident size stays, which shows
// the measurement above can see retained memory.
TEST(MemoryReturn, DietZeroKeepsEverything) {
  const Cycle c = run_cycle({"HAKMEM_MEM_DIET=0"});
  EXPECT_GE(c.r2, c.r1 - 16 * kMiB) << "pages were returned although HAKMEM_MEM_DIET=0";
  EXPECT_GE(c.dirty, kTotal - 16 * kMiB);
}

// In this process: blocks of threads that exited are freed by the main
// thread; hak_collect() then releases the abandoned slabs, and their pages
// go back to the OS.
TEST(MemoryReturn, BlocksOfExitedThreadsAfterCollect) {
  constexpr unsigned kThreads = 4;
  std::vector<std::vector<void*>> held(kThreads);
  for (auto& v : held) v.assign(pointers_needed(kTotal / kThreads), nullptr);
  std::vector<size_t> counts(kThreads);
  hak_free(hak_malloc(1));
  const size_t r0 = resident();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { counts[t] = allocate_small(kTotal / kThreads, held[t], int(t)); });
  }
  for (auto& th : threads) th.join();
  const size_t r1 = resident();
  EXPECT_GE(r1, r0 + kTotal - kSlack);
  uint64_t adoptions_before = 0;
  for (const hak_class_stats& cs : stats().classes) adoptions_before += cs.adoptions;
  for (unsigned t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < counts[t]; ++i) hak_free(held[t][i]);
  }
  const size_t released = hak_collect();
  uint64_t adoptions = 0;
  for (const hak_class_stats& cs : stats().classes) adoptions += cs.adoptions;
  // The abandoned slabs are adopted (by this thread's frees) or released by
  // hak_collect(); either way they end up free.
  EXPECT_GE(released + (adoptions - adoptions_before), 4 * 3u) << "abandoned slabs untouched";
  for (size_t size : {size_t{64}, size_t{1024}, size_t{16384}}) {
    EXPECT_LE(stats().classes[hakmem::size_to_class(size)].slabs_in_use, 1u) << size;
  }
  const size_t r2 = resident();
  EXPECT_LE(r2, r0 + 16 * kMiB + kSlack) << "after collect: " << mib(r2 - r0);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(MemoryReturn, LargeBlocks) {
  constexpr size_t kBlock = 32 * kMiB;
  hak_free(hak_malloc(1));
  const size_t r0 = resident();
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) {
    void* p = hak_malloc(kBlock);
    ASSERT_NE(p, nullptr);
    memset(p, i + 1, kBlock);
    blocks.push_back(p);
  }
  const size_t r1 = resident();
  EXPECT_GE(r1, r0 + 8 * kBlock - kSlack);
  for (void* p : blocks) hak_free(p);
  // Right after the free the large-block cache may keep what the blocks
  // gave back since their recent peak plus HAKMEM_LARGE_CACHE_MB (64 MiB);
  // within the decay time (HAKMEM_PURGE_MS, 1 s, and two purge intervals
  // for the peak to move on) it is back within 64 MiB and the rest is
  // unmapped. Large allocations run the purge passes.
  EXPECT_LE(stats().large_cached_bytes, 8 * kBlock + 64 * kMiB);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t cached = stats().large_cached_bytes;
  while (cached > 64 * kMiB && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    hak_free(hak_malloc(3 * kMiB));
    cached = stats().large_cached_bytes;
  }
  const size_t r2 = resident();
  EXPECT_LE(cached, 64 * kMiB);
  EXPECT_LE(r2, r0 + cached + kSlack) << "after the decay: " << mib(r2 - r0);
  EXPECT_LE(r2 + 8 * kBlock - 64 * kMiB - kSlack, r1) << "after the decay: " << mib(r2 - r0);
}

}  // namespace
