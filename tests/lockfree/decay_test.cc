// DecaySchedule (lockfree/decay.h): the election of purge passes, on
// synthetic clocks (no sleeping, no timing).
#include "lockfree/decay.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "lockfree/boost_atomics.h"
#include "lockfree/std_atomics.h"

namespace hakmem::lockfree {
namespace {

template <class P>
class DecayTest : public ::testing::Test {};
using Policies = ::testing::Types<StdAtomics, BoostAtomics>;
TYPED_TEST_SUITE(DecayTest, Policies);

constexpr uint64_t kMs = 1000 * 1000;

TYPED_TEST(DecayTest, DisabledNeverRunsAPass) {
  BasicDecaySchedule<TypeParam> d;
  d.configure(0);
  EXPECT_FALSE(d.enabled());
  for (uint64_t t : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 40}) EXPECT_FALSE(d.claim_pass(t));
}

TYPED_TEST(DecayTest, OnePassPerIntervalAtMost) {
  BasicDecaySchedule<TypeParam> d;
  d.configure(1000 * kMs);
  ASSERT_EQ(d.interval_ns(), 250 * kMs);
  EXPECT_TRUE(d.claim_pass(5000 * kMs)) << "the first check runs a pass";
  EXPECT_FALSE(d.claim_pass(5000 * kMs)) << "a second caller at the same time does not";
  EXPECT_FALSE(d.claim_pass(5249 * kMs)) << "nor one before the interval has passed";
  EXPECT_TRUE(d.claim_pass(5250 * kMs));
  EXPECT_EQ(d.next_pass_ns(), 5500 * kMs);
  // After a long idle time one pass runs, not one per missed interval.
  EXPECT_TRUE(d.claim_pass(90000 * kMs));
  EXPECT_FALSE(d.claim_pass(90001 * kMs));
}

TYPED_TEST(DecayTest, ExpiredAfterTheDecayTime) {
  BasicDecaySchedule<TypeParam> d;
  d.configure(1000 * kMs);
  EXPECT_FALSE(d.expired(7000 * kMs, 7999 * kMs));
  EXPECT_TRUE(d.expired(7000 * kMs, 8000 * kMs));
  EXPECT_TRUE(d.expired(7000 * kMs, 100000 * kMs));
  EXPECT_FALSE(d.expired(7000 * kMs, 6000 * kMs)) << "a stamp from another thread's later clock";
}

TYPED_TEST(DecayTest, RacingCallersElectExactlyOnePerInterval) {
  BasicDecaySchedule<TypeParam> d;
  d.configure(400);  // interval 100 (synthetic units)
  constexpr unsigned kThreads = 4;
  constexpr uint64_t kSteps = 20000;
  std::atomic<uint64_t> step{0};
  std::vector<std::atomic<unsigned>> winners(kSteps);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      // Each call uses a shared clock that only moves forward.
      for (uint64_t s; (s = step.fetch_add(1)) < kSteps * kThreads;) {
        const uint64_t now = s / kThreads;  // each instant seen by ~4 calls
        if (d.claim_pass(now * 10)) winners[now].fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  // The clock moves 10 per step and a pass is due every 100: exactly one
  // winner in each window of 10 steps, none elsewhere.
  unsigned total = 0;
  for (uint64_t w = 0; w < kSteps / 10; ++w) {
    unsigned in_window = 0;
    for (uint64_t s = w * 10; s < w * 10 + 10; ++s) in_window += winners[s].load();
    EXPECT_EQ(in_window, 1u) << "window " << w;
    total += in_window;
  }
  EXPECT_EQ(total, kSteps / 10);
}

}  // namespace
}  // namespace hakmem::lockfree
