// The memory limit's checks driven by allocation volume
// (core/limit/memory_limit.h, note_growth): a MemoryLimit reading its usage
// from a file the test writes, with times passed in, so that what is
// checked is the schedule and not the machine. A burst that grows by a
// quarter of the headroom runs a check at once, inside a timed check
// interval that would otherwise let it run on; growth below the step does
// not; concurrent reporters run at most one check per step.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "core/limit/memory_limit.h"

namespace hakmem {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kLimit = 1024 * kMiB;  // headroom 128 MiB, step 32 MiB
constexpr uint64_t kSecond = uint64_t{1000} * 1000 * 1000;

int g_purges = 0;
uint64_t count_purge(uint64_t) noexcept {
  ++g_purges;
  return 0;
}

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[] = "/tmp/hakmem-usage-XXXXXX";
    const int fd = mkstemp(name);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = name;
    g_purges = 0;
  }
  void TearDown() override { unlink(path_.c_str()); }
  void set_usage(uint64_t bytes) {
    FILE* f = fopen(path_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fprintf(f, "%llu\n", static_cast<unsigned long long>(bytes));
    fclose(f);
  }
  std::string path_;
};

TEST_F(VolumeTest, AQuarterHeadroomOfGrowthChecksAtOnce) {
  MemoryLimit limit;
  limit.configure(kLimit, LimitSource::kCgroupV2, path_.c_str(), 1000, count_purge);
  ASSERT_EQ(limit.headroom(), 128 * kMiB);
  ASSERT_EQ(limit.volume_step(), 32 * kMiB);
  set_usage(100 * kMiB);
  limit.maybe_check(kSecond);  // the first timed check
  EXPECT_EQ(limit.last_usage(), 100 * kMiB);
  EXPECT_FALSE(limit.in_pressure());

  set_usage(limit.enter_at() + kMiB);  // the burst has reached the threshold
  limit.maybe_check(kSecond + kSecond / 1000);  // control: the timed check is not due
  EXPECT_FALSE(limit.in_pressure());
  limit.note_growth(16 * kMiB);  // below the step: no check
  EXPECT_FALSE(limit.in_pressure());
  EXPECT_EQ(limit.volume_checks(), 0u);
  limit.note_growth(16 * kMiB);  // crosses it
  EXPECT_EQ(limit.volume_checks(), 1u);
  EXPECT_TRUE(limit.in_pressure());
  EXPECT_EQ(limit.last_usage(), limit.enter_at() + kMiB);
  EXPECT_EQ(g_purges, 1);  // and returned what was retained
  EXPECT_EQ(limit.episodes(), 1u);
}

TEST_F(VolumeTest, NoLimitNoCheck) {
  MemoryLimit limit;
  limit.configure(0, LimitSource::kNone, path_.c_str(), 1000, count_purge);
  set_usage(kLimit);
  for (int i = 0; i < 100; ++i) limit.note_growth(64 * kMiB);
  EXPECT_EQ(limit.volume_checks(), 0u);
  EXPECT_EQ(g_purges, 0);
}

TEST_F(VolumeTest, ConcurrentReportersCheckAtMostOncePerStep) {
  MemoryLimit limit;
  limit.configure(kLimit, LimitSource::kCgroupV2, path_.c_str(), 1000, nullptr);
  set_usage(100 * kMiB);
  constexpr int kThreads = 4, kReports = 2000;
  constexpr uint64_t kBytes = kMiB;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kReports; ++i) limit.note_growth(kBytes);
    });
  }
  for (auto& t : threads) t.join();
  const uint64_t total = kThreads * kReports * kBytes;
  const uint64_t checks = limit.volume_checks();
  // Each check takes what grew since the previous one, at least a step
  // (more when a reporter is preempted between its add and its exchange).
  EXPECT_LE(checks, total / limit.volume_step());
  EXPECT_GE(checks, 1u);
}

}  // namespace
}  // namespace hakmem
