// Concurrency stress of the idle-reclaim handshake
// (core/heap/idle_reclaim_protocol.h): owners that pause (and so look idle
// to the reclaim passes) while other threads free their blocks, a
// background purger that runs a reclaim pass every 5 ms
// (HAKMEM_PURGE_MS=20), owners that resume in the same classes (taking
// their slabs back from reclaimers, or releasing reclaimed ones) and owners
// that exit while a pass may hold their slabs (owner_detach). Every block's
// contents are checked before it is freed, so a reclaimer that purged a live
// block is caught (its pages come back zeroed); hak_check must find nothing
// at the end. Tagged "stress": it runs under TSan too.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::sleep_ms;

constexpr unsigned kPairs = 2;
constexpr unsigned kRounds = 12;
constexpr unsigned kBlocks = 1500;

struct Handoff {
  std::atomic<void**> blocks{nullptr};
  std::atomic<unsigned> count{0};
  std::atomic<bool> done{false};
};

size_t size_of(unsigned i, unsigned round) { return 16 + ((i * 37 + round * 101) % 24) * 48; }

void fill(void* p, size_t size, unsigned i) { memset(p, int(0x21 + i % 200), size); }

bool intact(const void* p, size_t size, unsigned i) {
  const auto* c = static_cast<const unsigned char*>(p);
  for (size_t k = 0; k < size; k += 7) {
    if (c[k] != static_cast<unsigned char>(0x21 + i % 200)) return false;
  }
  return true;
}

HAKMEM_CHILD(reclaim_stress) {
  std::atomic<unsigned> corrupt{0};
  std::vector<std::thread> threads;
  Handoff handoffs[kPairs];
  for (unsigned pair = 0; pair < kPairs; ++pair) {
    Handoff& h = handoffs[pair];
    // The owner: allocates a round, keeps the even blocks and hands the odd
    // ones to its freer, frees its own, pauses (idle), and goes again. The
    // second pair's owner exits after half the rounds, while its freer still
    // frees into its slabs.
    threads.emplace_back([&h, &corrupt, pair] {
      const unsigned rounds = pair == 1 ? kRounds / 2 : kRounds;
      for (unsigned round = 0; round < rounds; ++round) {
        void** mine = static_cast<void**>(hak_malloc(kBlocks * sizeof(void*)));
        void** theirs = static_cast<void**>(hak_malloc(kBlocks * sizeof(void*)));
        for (unsigned i = 0; i < kBlocks; ++i) {
          void* p = hak_malloc(size_of(i, round));
          fill(p, size_of(i, round), i);
          // An if, not `(i % 2 ? theirs : mine)[i / 2] = p`: built with
          // --config=asan (g++ 12, -O1, address and undefined sanitizers)
          // that form lost the store of the last even block, on main's
          // allocator too (mine[749] read back null right after it).
          if (i % 2) {
            theirs[i / 2] = p;
          } else {
            mine[i / 2] = p;
          }
        }
        while (h.blocks.load(std::memory_order_acquire) != nullptr) sleep_ms(1);
        h.count.store(round, std::memory_order_relaxed);
        h.blocks.store(theirs, std::memory_order_release);
        for (unsigned k = 0; k < kBlocks / 2; ++k) {
          if (!intact(mine[k], size_of(2 * k, round), 2 * k)) corrupt.fetch_add(1);
          hak_free(mine[k]);
        }
        hak_free(mine);
        sleep_ms(8 + round % 3 * 6);  // idle for a pass or two
      }
      while (h.blocks.load(std::memory_order_acquire) != nullptr) sleep_ms(1);
      h.done.store(true, std::memory_order_release);
    });
    // The freer: frees the odd blocks of each round (remote frees), checking
    // them first, then idles too.
    threads.emplace_back([&h, &corrupt] {
      for (;;) {
        void** theirs = h.blocks.load(std::memory_order_acquire);
        if (theirs == nullptr) {
          if (h.done.load(std::memory_order_acquire)) break;
          sleep_ms(1);
          continue;
        }
        const unsigned round = h.count.load(std::memory_order_relaxed);
        for (unsigned k = 0; k < kBlocks / 2; ++k) {
          if (!intact(theirs[k], size_of(2 * k + 1, round), 2 * k + 1)) corrupt.fetch_add(1);
          hak_free(theirs[k]);
        }
        h.blocks.store(nullptr, std::memory_order_release);
        hak_free(theirs);  // a block of the owner's (a remote free too)
        sleep_ms(3);
      }
    });
  }
  for (auto& t : threads) t.join();
  CHILD_CHECK(corrupt.load() == 0);
  CHILD_CHECK(hak_check() == 0);
  return 0;
}

TEST(IdleReclaimStress, OwnersPauseResumeAndExitWhileReclaimPassesRun) {
  const auto r = hakmem_test::run_child(
      "reclaim_stress", {"HAKMEM_PURGE_MS=20", "HAKMEM_BACKGROUND_PURGE=1"}, 300);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
