// Statistics (api/stats.cc): struct versioning, and numbers that follow
// what the program does. Each test uses size classes of its own.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/meta/geometry.h"
#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace hakmem {
namespace {

using hakmem_test::class_stats;
using hakmem_test::stats;

TEST(Stats, VersionIsChecked) {
  hak_stats st;
  memset(&st, 0xee, sizeof(st));
  st.version = 0;
  EXPECT_EQ(hak_get_stats(&st), -1);
  st.version = HAK_STATS_VERSION + 1;
  EXPECT_EQ(hak_get_stats(&st), -1);
  st.version = 0xffffffffu;
  EXPECT_EQ(hak_get_stats(&st), -1);
  // A rejected call leaves the struct alone.
  EXPECT_EQ(st.num_classes, 0xeeeeeeeeu);
  EXPECT_EQ(hak_get_stats(nullptr), -1);
  st.version = HAK_STATS_VERSION;
  EXPECT_EQ(hak_get_stats(&st), 0);
  EXPECT_EQ(st.version, uint32_t(HAK_STATS_VERSION));
  EXPECT_EQ(st.num_classes, kNumClasses);
  EXPECT_LE(st.num_classes, unsigned(HAK_STATS_MAX_CLASSES));
  for (unsigned c = 0; c < st.num_classes; ++c) {
    EXPECT_EQ(st.classes[c].block_size, class_to_size(c));
  }
  for (unsigned c = st.num_classes; c < HAK_STATS_MAX_CLASSES; ++c) {
    EXPECT_EQ(st.classes[c].block_size, 0u) << "unused entries are zeroed";
    EXPECT_EQ(st.classes[c].chunks, 0u);
  }
}

// A caller compiled against version 1 of the struct gets its fields and
// nothing written past them.
TEST(Stats, VersionOneGetsItsFieldsOnly) {
  hak_free(hak_malloc(1));
  hak_stats st;
  memset(&st, 0xee, sizeof(st));
  st.version = 1;
  ASSERT_EQ(hak_get_stats(&st), 0);
  EXPECT_EQ(st.version, 1u);
  EXPECT_EQ(st.num_classes, kNumClasses);
  EXPECT_GT(st.threads_started, 0u);
  EXPECT_EQ(st.bytes_resident, 0xeeeeeeeeeeeeeeeeull) << "a version 2 field was written";
}

// Version 3 gets its fields and not version 4's (the memory limit's).
TEST(Stats, VersionThreeGetsItsFieldsOnly) {
  hak_free(hak_malloc(1));
  hak_stats st;
  memset(&st, 0xee, sizeof(st));
  st.version = 3;
  ASSERT_EQ(hak_get_stats(&st), 0);
  EXPECT_EQ(st.version, 3u);
  EXPECT_NE(st.large_unmapped_bytes, 0xeeeeeeeeeeeeeeeeull) << "a version 3 field was not written";
  EXPECT_EQ(st.memory_limit_bytes, 0xeeeeeeeeeeeeeeeeull) << "a version 4 field was written";
  EXPECT_EQ(st.collected_bytes, 0xeeeeeeeeeeeeeeeeull) << "a version 4 field was written";
}

// bytes_resident counts hakmem's own pages: it grows by what a program
// touches in hakmem's blocks, falls when hakmem returns pages, and is part of
// the process's resident size.
TEST(Stats, BytesResidentFollowsTouchedPages) {
  constexpr size_t kBlock = 24u << 20;  // a large block of its own mapping
  // A mapping this large asks for transparent huge pages, so writing its
  // header may fault in a whole 2 MiB page.
  constexpr size_t kHugePage = 2u << 20;
  hak_free(hak_malloc(1));
  const hak_stats s0 = stats();
  EXPECT_GT(s0.bytes_resident, 0u);
  EXPECT_LE(s0.bytes_resident, s0.process_resident_bytes);
  auto* p = static_cast<char*>(hak_malloc(kBlock));
  ASSERT_NE(p, nullptr);
  const hak_stats s1 = stats();
  EXPECT_LE(s1.bytes_resident, s0.bytes_resident + kHugePage + (1u << 20)) << "untouched pages counted";
  memset(p, 1, kBlock);
  const hak_stats s2 = stats();
  EXPECT_GE(s2.bytes_resident, s0.bytes_resident + kBlock);
  EXPECT_LE(s2.bytes_resident, s0.bytes_resident + kBlock + kHugePage + (1u << 20));
  EXPECT_LE(s2.bytes_resident, s2.process_resident_bytes);
  // Returned pages: decommit the block's pages behind hakmem's back.
  char* page = reinterpret_cast<char*>(align_up(reinterpret_cast<uintptr_t>(p) + (8u << 20), kPageSize));
  ASSERT_EQ(madvise(page, 8u << 20, MADV_DONTNEED), 0);
  const hak_stats s3 = stats();
  EXPECT_LE(s3.bytes_resident + (8u << 20), s2.bytes_resident + (1u << 20));
  hak_free(p);
}

TEST(Stats, LiveBlocksTrackAFreshClass) {
  constexpr size_t kSize = 2000;  // class 2048: 32 blocks per slab
  ASSERT_EQ(class_stats(kSize).chunks, 0u);
  const uint64_t mapped0 = stats().bytes_mapped;
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) blocks.push_back(hak_malloc(kSize));
  hak_class_stats cs = class_stats(kSize);
  EXPECT_EQ(cs.live_blocks, 100u);
  EXPECT_EQ(cs.chunks, 1u);
  EXPECT_GE(cs.slabs_in_use, 4u);
  EXPECT_LE(cs.slabs_in_use, 5u);
  EXPECT_EQ(cs.remote_frees, 0u);
  EXPECT_EQ(cs.adoptions, 0u);
  EXPECT_EQ(stats().bytes_mapped, mapped0 + kChunkSize) << "one new chunk";
  for (int i = 0; i < 40; ++i) hak_free(blocks[i]);
  EXPECT_EQ(class_stats(kSize).live_blocks, 60u);
  for (int i = 0; i < 40; ++i) blocks[i] = hak_malloc(kSize);
  EXPECT_EQ(class_stats(kSize).live_blocks, 100u);
  for (void* p : blocks) hak_free(p);
  cs = class_stats(kSize);
  EXPECT_EQ(cs.live_blocks, 0u);
  EXPECT_LE(cs.slabs_in_use, 1u) << "only the slab being allocated from stays owned";
  EXPECT_EQ(cs.chunks, 1u);
  // hak_calloc and hak_realloc count the same way.
  void* a = hak_calloc(10, 200);
  void* b = hak_realloc(nullptr, 1900);
  EXPECT_EQ(class_stats(kSize).live_blocks, 2u);
  hak_free(a);
  hak_free(b);
  EXPECT_EQ(class_stats(kSize).live_blocks, 0u);
}

TEST(Stats, RemoteFreesAreCounted) {
  constexpr size_t kSize = 600;  // class 640
  std::vector<void*> blocks;
  for (int i = 0; i < 50; ++i) blocks.push_back(hak_malloc(kSize));
  const uint64_t before = class_stats(kSize).remote_frees;
  std::thread([&] {
    for (void* p : blocks) hak_free(p);
  }).join();
  EXPECT_EQ(class_stats(kSize).remote_frees, before + 50);
  // Remotely freed blocks count as live until the owner takes them back.
  std::vector<void*> again;
  for (int i = 0; i < 200; ++i) again.push_back(hak_malloc(kSize));
  for (void* p : again) hak_free(p);
  EXPECT_EQ(class_stats(kSize).live_blocks, 0u);
}

TEST(Stats, LargeBlocksAndThreads) {
  const hak_stats s0 = stats();
  void* p = hak_malloc(3 << 20);
  ASSERT_NE(p, nullptr);
  const hak_stats s1 = stats();
  EXPECT_EQ(s1.large_live_blocks, s0.large_live_blocks + 1);
  EXPECT_GE(s1.large_live_bytes, s0.large_live_bytes + (3 << 20));
  // Mapped afresh, or carved from cached free ranges.
  EXPECT_GE(s1.bytes_mapped + (s0.large_cached_bytes - s1.large_cached_bytes), s0.bytes_mapped + (3 << 20));
  hak_free(p);
  const hak_stats s2 = stats();
  EXPECT_EQ(s2.large_live_blocks, s0.large_live_blocks);
  EXPECT_EQ(s2.large_live_bytes, s0.large_live_bytes);
  EXPECT_GE(s2.large_cached_bytes, s1.large_cached_bytes + (3 << 20)) << "kept for reuse";

  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([] { hak_free(hak_malloc(24)); });
  for (auto& t : threads) t.join();
  const hak_stats s3 = stats();
  EXPECT_EQ(s3.threads_started, s2.threads_started + 3);
  EXPECT_EQ(s3.threads_exited, s2.threads_exited + 3);
  EXPECT_LE(s3.threads_exited, s3.threads_started);
}

TEST(Stats, ResidentBytesMatchProc) {
  const hak_stats st = stats();
  const size_t rss = hakmem_test::resident_bytes();
  EXPECT_GT(st.process_resident_bytes, 0u);
  EXPECT_NEAR(double(st.process_resident_bytes), double(rss), double(1 << 20));
  EXPECT_LE(st.bytes_dirty_free, st.bytes_mapped);
}

TEST(Stats, ConsistentAcrossClasses) {
  const hak_stats st = stats();
  uint64_t chunk_bytes = 0;
  for (unsigned c = 0; c < st.num_classes; ++c) {
    const hak_class_stats& cs = st.classes[c];
    EXPECT_LE(cs.slabs_in_use, cs.chunks * kSlabsPerChunk) << "class " << c;
    EXPECT_LE(cs.live_blocks * cs.block_size, cs.slabs_in_use * kSlabSize) << "class " << c;
    chunk_bytes += cs.chunks * kChunkSize;
  }
  EXPECT_GE(st.bytes_mapped, chunk_bytes + st.large_live_bytes);
}

std::string read_all(int fd) {
  std::string s;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) s.append(buf, size_t(n));
  return s;
}

TEST(Stats, PrintStats) {
  constexpr size_t kSize = 7000;  // class 7168
  std::vector<void*> blocks;
  for (int i = 0; i < 20; ++i) blocks.push_back(hak_malloc(kSize));
  const int fd = memfd_create("hakmem-stats", 0);
  ASSERT_GE(fd, 0);
  hak_print_stats(fd);
  const std::string out = read_all(fd);
  close(fd);
  EXPECT_EQ(out.rfind("hakmem statistics\n", 0), 0u) << out;
  EXPECT_NE(out.find("class  block_size  chunks  slabs_in_use  live_blocks  remote_frees  adoptions\n"),
            std::string::npos)
      << out;
  const hak_class_stats cs = class_stats(kSize);
  const std::string row = "\n" + std::to_string(size_to_class(kSize)) + "  7168  " +
                          std::to_string(cs.chunks) + "  " + std::to_string(cs.slabs_in_use) +
                          "  20  ";
  EXPECT_NE(out.find(row), std::string::npos) << "missing row " << row << " in\n" << out;
  EXPECT_NE(out.find("bytes mapped "), std::string::npos) << out;
  EXPECT_NE(out.find(" exited\n"), std::string::npos) << out;
  for (void* p : blocks) hak_free(p);
}

HAKMEM_CHILD(stats_at_exit) {
  for (int i = 0; i < 10; ++i) hak_malloc(300);  // left live on purpose
  return 0;
}

TEST(Stats, PrintedAtExitWithHakmemStats) {
  hakmem_test::ChildResult r = hakmem_test::run_child("stats_at_exit", {"HAKMEM_STATS=1"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_NE(r.err.find("hakmem statistics\n"), std::string::npos) << r.err;
  const std::string row = "\n" + std::to_string(size_to_class(300)) + "  320  1  1  10  0  0\n";
  EXPECT_NE(r.err.find(row), std::string::npos) << r.err;

  r = hakmem_test::run_child("stats_at_exit", {});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.err.find("hakmem statistics"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace hakmem
