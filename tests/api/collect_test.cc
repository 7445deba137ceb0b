// hak_collect() returns retained free memory (api/hakmem.h): after large
// and small blocks are freed under budgets big enough to keep them all
// resident, hak_collect() decommits every free slab's pages and unmaps
// every cached large range at once, and counts the bytes in
// hak_stats.collected_bytes. Its return value still counts the abandoned
// slabs it released. A fresh process per scenario: the budgets are read at
// start.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::stats;

constexpr size_t kMiB = size_t{1} << 20;

HAKMEM_CHILD(collect_trims) {
  std::vector<void*> large, small;
  for (size_t done = 0; done < 64 * kMiB; done += 4 * kMiB) {
    void* p = hak_malloc(4 * kMiB);
    CHILD_CHECK(p != nullptr);
    memset(p, 1, 4 * kMiB);
    large.push_back(p);
  }
  for (size_t done = 0; done < 16 * kMiB; done += 1024) {
    void* p = hak_malloc(1024);
    CHILD_CHECK(p != nullptr);
    memset(p, 2, 1024);
    small.push_back(p);
  }
  for (void* p : large) hak_free(p);
  for (void* p : small) hak_free(p);
  const hak_stats before = stats();
  printf("before: cached=%llu dirty=%llu\n", (unsigned long long)before.large_cached_bytes,
         (unsigned long long)before.bytes_dirty_free);
  CHILD_CHECK(before.large_cached_bytes >= 64 * kMiB);  // the cache keeps them
  CHILD_CHECK(before.bytes_dirty_free >= 8 * kMiB);     // the dirty budget keeps them
  CHILD_CHECK(before.collected_bytes == 0);
  const size_t released = hak_collect();
  const hak_stats after = stats();
  printf("after: cached=%llu dirty=%llu collected=%llu released=%zu\n",
         (unsigned long long)after.large_cached_bytes, (unsigned long long)after.bytes_dirty_free,
         (unsigned long long)after.collected_bytes, released);
  CHILD_CHECK(released == 0);  // no thread exited: no abandoned slab
  CHILD_CHECK(after.large_cached_bytes == 0);
  CHILD_CHECK(after.large_cached_blocks == 0);
  CHILD_CHECK(after.bytes_dirty_free == 0);
  CHILD_CHECK(after.collected_bytes >= before.large_cached_bytes + before.bytes_dirty_free);
  CHILD_CHECK(after.large_unmapped_bytes >= before.large_unmapped_bytes + 64 * kMiB);
  CHILD_CHECK(after.bytes_purged >= before.bytes_purged + before.bytes_dirty_free);
  // hakmem's resident memory fell by what it gave back.
  CHILD_CHECK(after.bytes_resident + 64 * kMiB <= before.bytes_resident);
  // Nothing left: a second call returns nothing more.
  hak_collect();
  CHILD_CHECK(stats().collected_bytes == after.collected_bytes);
  // Memory given back is reusable.
  void* p = hak_malloc(4 * kMiB);
  CHILD_CHECK(p != nullptr);
  memset(p, 3, 4 * kMiB);
  hak_free(p);
  return 0;
}

TEST(CollectTest, ReturnsCachedLargeRangesAndDirtySlabPages) {
  const auto r = hakmem_test::run_child(
      "collect_trims", {"HAKMEM_LARGE_CACHE_MB=512", "HAKMEM_DIRTY_MB=512", "HAKMEM_PURGE_MS=0"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  printf("%s", r.out.c_str());
}

}  // namespace
