// The hak_ API (api/hak_api.cc, core/alloc/) on its own: semantics of each function,
// pointer classification (invariant I4), and remote frees between threads
// (invariant I3). The same functions behind malloc & co. are tested in
// malloc_api_test.
#include <errno.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <set>
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

int g_global_int;

TEST(Allocator, ZeroSizeGivesDistinctBlocks) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    void* p = hak_malloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second) << "malloc(0) returned a live block twice";
    EXPECT_GE(hak_usable_size(p), 1u);
    blocks.push_back(p);
  }
  for (void* p : blocks) hak_free(p);
  hak_free(nullptr);  // no effect
  void* r = hak_realloc(nullptr, 0);
  EXPECT_NE(r, nullptr);
  hak_free(r);
}

TEST(Allocator, OwnershipClassification) {
  void* small = hak_malloc(100);
  void* large = hak_malloc(3 << 20);
  int local = 0;
  EXPECT_TRUE(hak_owns(small));
  EXPECT_TRUE(hak_owns(large));
  EXPECT_FALSE(hak_owns(static_cast<char*>(small) + 16)) << "interior pointer";
  EXPECT_FALSE(hak_owns(static_cast<char*>(large) + 4096)) << "interior pointer";
  EXPECT_FALSE(hak_owns(&local));
  EXPECT_FALSE(hak_owns(&g_global_int));
  EXPECT_FALSE(hak_owns(nullptr));
  EXPECT_FALSE(hak_owns(reinterpret_cast<void*>(uintptr_t{1} << 60)));
  EXPECT_FALSE(hak_owns(reinterpret_cast<void*>(~uintptr_t{0} - 15)));
  void* foreign = ::operator new(64);  // not hakmem's in this binary
  EXPECT_FALSE(hak_owns(foreign));
  EXPECT_EQ(hak_usable_size(foreign), 0u);
  ::operator delete(foreign);
  EXPECT_EQ(hak_usable_size(&local), 0u);
  hak_free(small);
  hak_free(large);
  EXPECT_FALSE(hak_owns(small)) << "freed block";
  EXPECT_FALSE(hak_owns(large)) << "freed large block";
  EXPECT_EQ(hak_usable_size(large), 0u);
}

TEST(Allocator, CallocZeroesReusedBlocks) {
  for (size_t size : {size_t{24}, size_t{256}, size_t{5000}, size_t{32768}}) {
    std::vector<void*> blocks;
    for (int i = 0; i < 300; ++i) {
      void* p = hak_malloc(size);
      memset(p, 0xff, size);
      blocks.push_back(p);
    }
    for (void* p : blocks) hak_free(p);
    for (int i = 0; i < 300; ++i) {
      auto* p = static_cast<unsigned char*>(hak_calloc(1, size));
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(std::all_of(p, p + size, [](unsigned char c) { return c == 0; })) << size;
      blocks[i] = p;
    }
    for (void* p : blocks) hak_free(p);
  }
  errno = 0;
  EXPECT_EQ(hak_calloc(SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* z = hak_calloc(0, 100);
  EXPECT_NE(z, nullptr);
  hak_free(z);
}

TEST(Allocator, ReallocAcrossClasses) {
  std::mt19937 rng(1);
  void* p = hak_malloc(1);
  size_t size = 1;
  fill_pattern(p, size, 0);
  for (int i = 0; i < 3000; ++i) {
    const size_t next = 1 + rng() % (i % 7 == 0 ? 200000 : 4000);
    void* q = hak_realloc(p, next);
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(check_pattern(q, std::min(size, next), 0)) << size << " -> " << next;
    ASSERT_GE(hak_usable_size(q), next);
    fill_pattern(q, next, 0);
    p = q;
    size = next;
  }
  hak_free(p);
  // A modest shrink stays in place; a drastic one moves to a smaller class.
  p = hak_malloc(1000);
  EXPECT_EQ(hak_realloc(p, 900), p);
  void* q = hak_realloc(p, 100);
  EXPECT_LE(hak_usable_size(q), 128u) << "shrinking to a tenth should release the big block";
  hak_free(q);
  // realloc(p, 0) frees p.
  p = hak_malloc(40);
  EXPECT_EQ(hak_realloc(p, 0), nullptr);
  EXPECT_FALSE(hak_owns(p));
  // reallocarray checks the multiplication.
  p = hak_malloc(40);
  errno = 0;
  EXPECT_EQ(hak_reallocarray(p, SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(hak_owns(p)) << "the block survives a failed reallocarray";
  p = hak_reallocarray(p, 10, 100);
  EXPECT_GE(hak_usable_size(p), 1000u);
  hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(Allocator, ImpossibleSizes) {
  for (size_t size : {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2, size_t{1} << 47, size_t{1} << 62}) {
    errno = 0;
    EXPECT_EQ(hak_malloc(size), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
    errno = 0;
    EXPECT_EQ(hak_aligned_alloc(64, size), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
    errno = 0;
    EXPECT_EQ(hak_aligned_alloc(size_t{1} << 22, size), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
  }
}

TEST(Allocator, AlignedAllocEveryPowerOfTwo) {
  for (size_t align = 1; align <= (size_t{1} << 24); align <<= 1) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{24}, align, align + 1, size_t{40000}}) {
      void* p = hak_aligned_alloc(align, size);
      ASSERT_NE(p, nullptr) << align << " " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align << " " << size;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
      EXPECT_GE(hak_usable_size(p), size);
      memset(p, 0x3c, size);
      hak_free(p);
    }
    void* p = nullptr;
    if (align >= sizeof(void*)) {
      EXPECT_EQ(hak_posix_memalign(&p, align, 100), 0) << align;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
      hak_free(p);
    } else {
      EXPECT_EQ(hak_posix_memalign(&p, align, 100), EINVAL) << align;
    }
  }
  for (size_t bad : {size_t{0}, size_t{3}, size_t{24}, size_t{48}, size_t{4097}}) {
    errno = 0;
    EXPECT_EQ(hak_aligned_alloc(bad, 16), nullptr) << bad;
    EXPECT_EQ(errno, EINVAL) << bad;
    void* p = reinterpret_cast<void*>(0x1234);
    EXPECT_EQ(hak_posix_memalign(&p, bad, 16), EINVAL) << bad;
    EXPECT_EQ(p, reinterpret_cast<void*>(0x1234)) << "out must be untouched on failure";
  }
  // Over-aligned small blocks freed with their size (aligned sized delete).
  for (size_t align = 32; align <= 4096; align *= 2) {
    void* p = hak_aligned_alloc(align, 24);
    hak_free_sized(p, hak_usable_size(p));
  }
}

// A zero-size request with an alignment of 2 MiB or more still gets a block
// inside its own mapping; it must not claim the neighbouring 2 MiB granule
// (which may hold a chunk of small blocks) in the registry.
TEST(Allocator, ZeroSizeOverAlignedBlocksLeaveNeighboursAlone) {
  std::vector<void*> smalls, zeros;
  for (int i = 0; i < 8; ++i) {
    for (int k = 0; k < 10000; ++k) smalls.push_back(hak_malloc(112));
    for (size_t align : {size_t{1} << 21, size_t{1} << 22}) {
      void* z = hak_aligned_alloc(align, 0);
      ASSERT_NE(z, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(z) % align, 0u);
      EXPECT_TRUE(hak_owns(z));
      zeros.push_back(z);
    }
  }
  size_t lost = 0;
  for (void* p : smalls) lost += !hak_owns(p);
  EXPECT_EQ(lost, 0u) << "small blocks no longer recognised as hakmem's";
  EXPECT_EQ(hak_check(), 0u);
  // Chunks mapped after a zero-size block (often right above it) must not
  // take its registry entry either.
  for (void* z : zeros) ASSERT_TRUE(hak_owns(z)) << z << " is no longer recognised";
  for (void* z : zeros) hak_free(z);
  for (void* p : smalls) hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

// After such a block is freed (and unmapped), nothing of it may remain in
// the registry: looking its address up must not read the unmapped header.
HAKMEM_CHILD(zero_size_over_aligned_freed) {
  for (size_t align : {size_t{1} << 21, size_t{1} << 22, size_t{1} << 24}) {
    for (int i = 0; i < 4; ++i) {
      void* z = hak_aligned_alloc(align, 0);
      CHILD_CHECK(z != nullptr);
      CHILD_CHECK(hak_owns(z));
      hak_free(z);
      printf("freed %p\n", z);
      fflush(stdout);
      CHILD_CHECK(!hak_owns(z));
      CHILD_CHECK(hak_usable_size(z) == 0);
    }
  }
  return 0;
}

TEST(Allocator, ZeroSizeOverAlignedBlockLeavesNoTrace) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("zero_size_over_aligned_freed", {});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

TEST(Allocator, FreeSizedAcceptsTheRightSize) {
  for (size_t size : {size_t{1}, size_t{16}, size_t{17}, size_t{1000}, size_t{32768}, size_t{40000},
                      size_t{5} << 20}) {
    void* p = hak_malloc(size);
    hak_free_sized(p, size);
    EXPECT_FALSE(hak_owns(p));
    // Any size of the same class is accepted too.
    p = hak_malloc(size);
    hak_free_sized(p, hak_usable_size(p));
    EXPECT_FALSE(hak_owns(p));
  }
}

// The owner keeps allocating while another thread frees its blocks: the
// blocks come back through the remote lists instead of the class growing.
TEST(Allocator, OwnerReusesRemotelyFreedBlocks) {
  constexpr size_t kSize = 176;
  constexpr int kRounds = 200, kPerRound = 1000;
  const hak_class_stats before = class_stats(kSize);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<void*> batch;
  bool batch_ready = false, done = false;
  std::thread freer([&] {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return batch_ready || done; });
      if (!batch_ready && done) return;
      for (void* p : batch) hak_free(p);
      batch.clear();
      batch_ready = false;
      cv.notify_all();
    }
  });
  for (int r = 0; r < kRounds; ++r) {
    std::vector<void*> mine;
    for (int i = 0; i < kPerRound; ++i) {
      void* p = hak_malloc(kSize);
      ASSERT_NE(p, nullptr);
      *static_cast<int*>(p) = i;
      mine.push_back(p);
    }
    std::unique_lock<std::mutex> lock(mu);
    batch = std::move(mine);
    batch_ready = true;
    cv.notify_all();
    cv.wait(lock, [&] { return !batch_ready; });
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  }
  freer.join();
  const hak_class_stats cs = class_stats(kSize);
  EXPECT_LE(cs.chunks, before.chunks + 1) << "200 rounds of 176 KB should fit one chunk";
  EXPECT_EQ(cs.remote_frees - before.remote_frees, uint64_t(kRounds) * kPerRound);
  EXPECT_LE(cs.slabs_in_use, before.slabs_in_use + 8);
  EXPECT_EQ(hak_check(), 0u);
}

// Producers hand blocks to consumers who check and free them (remote
// frees), while also allocating and freeing locally; no block is lost or
// handed out twice.
TEST(Allocator, ProducersAndConsumers) {
  constexpr int kPairs = 2, kPerProducer = 40000;
  const size_t sizes[] = {16, 40, 112, 400, 1536, 9000};
  uint64_t live_before = 0;
  for (size_t s : sizes) live_before += class_stats(s).live_blocks;
  struct Queue {
    std::mutex mu;
    std::deque<std::pair<void*, size_t>> q;
    bool closed = false;
  };
  Queue queues[kPairs];
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kPairs; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(i);
      std::vector<std::pair<void*, size_t>> local;
      for (int k = 0; k < kPerProducer; ++k) {
        const size_t size = sizes[rng() % 6];
        void* p = hak_malloc(size);
        if (p == nullptr) {
          ++bad;
          continue;
        }
        fill_pattern(p, size, reinterpret_cast<uintptr_t>(p));
        if (rng() % 4 == 0) {
          local.emplace_back(p, size);
          if (local.size() > 100) {
            auto [q, qs] = local[rng() % local.size()];
            std::erase(local, std::make_pair(q, qs));
            if (!check_pattern(q, qs, reinterpret_cast<uintptr_t>(q))) ++bad;
            hak_free(q);
          }
        } else {
          std::lock_guard<std::mutex> lock(queues[i].mu);
          queues[i].q.emplace_back(p, size);
        }
      }
      for (auto [q, qs] : local) hak_free(q);
      std::lock_guard<std::mutex> lock(queues[i].mu);
      queues[i].closed = true;
    });
    threads.emplace_back([&, i] {
      for (;;) {
        std::pair<void*, size_t> item{nullptr, 0};
        bool closed;
        {
          std::lock_guard<std::mutex> lock(queues[i].mu);
          closed = queues[i].closed;
          if (!queues[i].q.empty()) {
            item = queues[i].q.front();
            queues[i].q.pop_front();
          }
        }
        if (item.first == nullptr) {
          if (closed) return;
          std::this_thread::yield();
          continue;
        }
        if (!check_pattern(item.first, item.second, reinterpret_cast<uintptr_t>(item.first))) ++bad;
        hak_free(item.first);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  hak_collect();
  uint64_t live_after = 0;
  for (size_t s : sizes) live_after += class_stats(s).live_blocks;
  EXPECT_EQ(live_after, live_before) << "blocks were lost or counted twice";
  EXPECT_EQ(hak_check(), 0u);
}

}  // namespace
}  // namespace hakmem
