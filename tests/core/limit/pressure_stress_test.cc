// Threads allocate and free (small, medium and large blocks, some freed by
// another thread) while the memory limit's pressure runs its purges
// concurrently (core/limit/memory_limit.h). HAKMEM_MEMORY_LIMIT_MB=1 puts
// the process under pressure at the first check and keeps it there (its
// resident set never falls below 0.5 MiB), and HAKMEM_PURGE_MS=40 checks
// every 10 ms: every check purges every free slab and every cached range
// while the threads claim and release them. Blocks are tagged and verified
// (stress_util.h) and hak_check() must find nothing; under ThreadSanitizer
// (tag "stress") the purges must race with nothing. Under pressure frees
// keep nothing, so a second run without a limit and with large budgets has
// every thread call hak_collect() every round: the same purges
// (release_retained_memory) then find free slabs and cached ranges to
// return while the other threads take them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stats.h"
#include "tests/support/stress_util.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::stats;

constexpr int kThreads = 4;
constexpr int kRounds = 60;
constexpr int kBlocks = 400;

HAKMEM_CHILD(pressure_churn) {
  std::atomic<void*> handoff[kThreads] = {};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &handoff, &bad] {
      hakmem_test::Rng rng(0x1234 + t);
      std::vector<void*> blocks;
      std::vector<size_t> sizes;
      for (int round = 0; round < kRounds; ++round) {
        for (int i = 0; i < kBlocks; ++i) {
          size_t n = hakmem_test::random_size(rng, 16);
          if (i == 0) n = (size_t{1} << 20) + 4096 * (rng.next() % 512);  // large
          void* p = hak_malloc(n);
          if (p == nullptr) {
            bad.fetch_add(1);
            continue;
          }
          hakmem_test::fill(p, n, uint64_t(t) << 32 | uint64_t(i));
          blocks.push_back(p);
          sizes.push_back(n);
        }
        for (size_t i = 0; i < blocks.size(); ++i) {
          if (!hakmem_test::verify(blocks[i], sizes[i], uint64_t(t) << 32 | uint64_t(i))) {
            bad.fetch_add(1);
          }
          if (i % 7 == 0) {
            // Handed to the next thread, which frees it (a remote free).
            hak_free(handoff[(t + 1) % kThreads].exchange(blocks[i]));
          } else {
            hak_free(blocks[i]);
          }
        }
        blocks.clear();
        sizes.clear();
        if (round % 10 == 0 || getenv("HAKMEM_MEMORY_LIMIT_MB") == nullptr) hak_collect();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& h : handoff) hak_free(h.exchange(nullptr));
  CHILD_CHECK(bad.load() == 0);
  CHILD_CHECK(hak_check() == 0);
  const hak_stats st = stats();
  printf("episodes=%llu pressure_purged=%llu in_pressure=%u\n",
         (unsigned long long)st.pressure_episodes, (unsigned long long)st.pressure_purged_bytes,
         st.memory_pressure);
  printf("collected=%llu\n", (unsigned long long)st.collected_bytes);
  if (getenv("HAKMEM_MEMORY_LIMIT_MB") == nullptr) {
    CHILD_CHECK(st.collected_bytes > 0);
    CHILD_CHECK(st.pressure_episodes == 0);
    return 0;
  }
  CHILD_CHECK(st.memory_limit_bytes == (uint64_t{1} << 20));
  CHILD_CHECK(st.memory_limit_source == HAK_LIMIT_SOURCE_KNOB);
  CHILD_CHECK(st.pressure_episodes == 1);  // never left: usage stays above 0.5 MiB
  CHILD_CHECK(st.memory_pressure == 1);
  CHILD_CHECK(st.pressure_purged_bytes > 0);  // frees returned their memory at once
  return 0;
}

TEST(PressureStressTest, PurgesRaceWithAllocationAndFree) {
  const auto r = hakmem_test::run_child("pressure_churn",
                                        {"HAKMEM_MEMORY_LIMIT_MB=1", "HAKMEM_PURGE_MS=40"}, 240);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  printf("%s", r.out.c_str());
}

TEST(PressureStressTest, CollectRacesWithAllocationAndFree) {
  const auto r = hakmem_test::run_child(
      "pressure_churn", {"HAKMEM_DIRTY_MB=256", "HAKMEM_LARGE_CACHE_MB=256", "HAKMEM_PURGE_MS=40"},
      240);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  printf("%s", r.out.c_str());
}

}  // namespace
