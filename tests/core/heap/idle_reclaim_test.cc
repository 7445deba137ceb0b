// Reclaiming the slabs of idle owners (core/heap/idle_reclaim_protocol.h,
// SlabSource::reclaim_idle): a slab whose blocks were all freed by other
// threads while its owner makes no allocator call comes back without the
// owner. The memory-return case of the README, in small: thread A allocates
// kTotal bytes of small blocks, A frees half of them (every other block),
// then thread B frees the other half (A is idle by then: an owner that frees
// meanwhile takes its notices on its own slow paths); then both stay alive and idle (they sleep, and
// call nothing of hakmem's). Within a bounded time hakmem's resident bytes
// fall to the baseline + the dirty budget (16 MiB) + 8 MiB, driven by
//  - the background purger (HAKMEM_BACKGROUND_PURGE=1), or
//  - light activity of a third thread (slab acquires and releases of a
//    medium class), as a slow path of any thread runs the reclaim pass.
// Controls: the memory was resident after the frees (the owner kept the
// slabs), and with HAKMEM_PURGE_MS=0 (no reclaim) it stays resident.
//
// What is measured is hakmem's own resident memory (hak_stats.bytes_resident),
// as in tests/core/alloc/memory_return_test.cc. Each scenario runs in a
// fresh process.
#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::now_ms;
using hakmem_test::sleep_ms;
using hakmem_test::stats;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kTotal = 96 * kMiB;
constexpr size_t kDirtyBudget = 16 * kMiB;  // HAKMEM_DIRTY_MB's default
constexpr size_t kSlack = 8 * kMiB;
// The figure is 1 s after the last free (a pass every quarter of the 1 s
// decay time; an owner is idle once a whole pass interval went by without
// a slow call of its). The bound leaves a loaded machine or a sanitizer
// build some room; the time taken is printed.
constexpr uint64_t kBoundMs = 2500;

// Light activity: medium blocks of a class nobody else uses, so that their
// runs are acquired and released (slab slow paths).
void touch_medium() {
  void* p[3];
  for (void*& q : p) q = hak_malloc(600 * 1024);
  for (void* q : p) hak_free(q);
}

struct Outcome {
  size_t baseline, after_free, final_resident;
  uint64_t ms;
};

// The scenario; `activity`: the polling thread does touch_medium() each poll.
Outcome run_idle_owners(bool activity, uint64_t wait_ms) {
  const size_t kSizes[] = {64, 1024, 16384};
  std::vector<void*> ptrs(kTotal / 3 / 64 + kTotal / 3 / 1024 + kTotal / 3 / 16384 + 3, nullptr);
  hak_free(hak_malloc(1));  // initialise hakmem before the baseline
  if (activity) touch_medium();
  Outcome o{};
  o.baseline = stats().bytes_resident;
  std::atomic<int> phase{0};
  std::atomic<bool> stop{false};
  size_t n = 0;
  auto wait_for = [&](int p) {
    while (phase.load(std::memory_order_acquire) < p) sleep_ms(1);
  };
  std::thread a([&] {
    for (size_t size : kSizes) {
      for (size_t bytes = 0; bytes + size <= kTotal / 3; bytes += size) {
        void* p = hak_malloc(size);
        memset(p, 0x5a, size);
        ptrs[n++] = p;
      }
    }
    for (size_t i = 0; i < n; i += 2) hak_free(ptrs[i]);
    phase.store(2, std::memory_order_release);  // allocated, own half freed
    while (!stop.load(std::memory_order_acquire)) sleep_ms(5);  // alive, idle
  });
  std::thread b([&] {
    wait_for(2);  // A is idle from here on
    for (size_t i = 1; i < n; i += 2) hak_free(ptrs[i]);
    phase.fetch_add(1, std::memory_order_acq_rel);
    while (!stop.load(std::memory_order_acquire)) sleep_ms(5);  // alive, idle
  });
  wait_for(3);
  const uint64_t t0 = now_ms();
  o.after_free = stats().bytes_resident;
  size_t r = o.after_free;
  while (now_ms() - t0 <= wait_ms) {
    if (activity) touch_medium();
    r = stats().bytes_resident;
    if (r <= o.baseline + kDirtyBudget + kSlack) break;
    sleep_ms(20);
  }
  o.ms = now_ms() - t0;
  o.final_resident = r;
  stop.store(true, std::memory_order_release);
  a.join();
  b.join();
  printf("baseline %zu MiB, after the frees %zu MiB, then %zu MiB after %llu ms\n",
         o.baseline / kMiB, o.after_free / kMiB, o.final_resident / kMiB,
         (unsigned long long)o.ms);
  return o;
}

// The figure, and its control that the memory was resident after the frees
// (the owner kept the slabs).
int expect_reclaimed(bool activity) {
  const Outcome o = run_idle_owners(activity, kBoundMs);
  CHILD_CHECK(o.after_free >= o.baseline + kTotal / 2);
  CHILD_CHECK(o.final_resident <= o.baseline + kDirtyBudget + kSlack);
  CHILD_CHECK(hak_check() == 0);
  return 0;
}

HAKMEM_CHILD(idle_owners_background) { return expect_reclaimed(false); }

HAKMEM_CHILD(idle_owners_activity) { return expect_reclaimed(true); }

HAKMEM_CHILD(idle_owners_no_reclaim) {
  const Outcome o = run_idle_owners(true, 1500);
  CHILD_CHECK(o.after_free >= o.baseline + kTotal / 2);
  CHILD_CHECK(o.final_resident >= o.baseline + kTotal / 2);  // nobody took the slabs back
  return 0;
}

void expect_child(const char* name, const std::vector<std::string>& env) {
  const auto r = hakmem_test::run_child(name, env, 180);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  printf("%s: %s", name, r.out.c_str());
}

TEST(IdleReclaim, BackgroundPurgerReclaimsSlabsOfIdleOwners) {
  expect_child("idle_owners_background", {"HAKMEM_BACKGROUND_PURGE=1"});
}

TEST(IdleReclaim, ActivityOfAnotherThreadReclaimsSlabsOfIdleOwners) {
  expect_child("idle_owners_activity", {});
}

// The control: with HAKMEM_PURGE_MS=0 there is no reclaim (nor decay), and
// the idle owners keep every slab other threads freed into.
TEST(IdleReclaim, WithoutReclaimIdleOwnersKeepTheirSlabs) {
  expect_child("idle_owners_no_reclaim", {"HAKMEM_PURGE_MS=0"});
}

}  // namespace
