// The bad-input matrix: every misuse of the hak_ API that hakmem can
// recognise, with its exact outcome.
//
// By default a recognised misuse prints one line
//   hakmem: FUNCTION(0xADDRESS): WHAT; aborting
// and aborts: each case is a death test expecting SIGABRT and that line.
// Under HAKMEM_ON_ERROR=continue the line ends in "; ignored", the call
// returns, and the heap must still be consistent: the death-test child
// runs the case, then hak_check() and a round of allocations, and exits 0
// only if both are clean.
//
// Calls that are not misuse but must fail cleanly (overflowing calloc,
// malloc(SIZE_MAX), bad alignments) are ordinary tests at the end.
//
// This binary uses the hak_ API only (no malloc overrides), so it also runs
// under --config=asan; "foreign" pointers include the system (or ASan's)
// malloc's. The forms that need the overrides (operator delete, glibc's
// malloc through dlsym) are in bad_input_overrides_test.cc.
#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stress_util.h"

namespace {

using hakmem_test::fill;
using hakmem_test::Rng;
using hakmem_test::verify;

constexpr size_t kChunk = size_t{2} << 20;

char g_global_buffer[256];

// After a misuse was reported and ignored: allocate, verify and free a
// spread of blocks (including the sizes the cases use), then check the heap.
// Returns the number of problems.
size_t heap_still_works() {
  size_t problems = hak_check();
  if (problems != 0) fprintf(stderr, "hak_check after the bad call: %zu problems\n", problems);
  Rng r(42);
  std::vector<std::pair<void*, size_t>> blocks;
  const size_t sizes[] = {16, 64, 100, 1000, 24576, 100000, 5u << 20};
  for (unsigned i = 0; i < 600; ++i) {
    const size_t n = i < 70 ? sizes[i % 7] : hakmem_test::random_size(r, 64);
    void* p = hak_malloc(n);
    if (p == nullptr) {
      ++problems;
      continue;
    }
    fill(p, n, i + 1);
    blocks.emplace_back(p, n);
  }
  // No block handed out twice.
  std::vector<uintptr_t> addrs;
  for (auto& b : blocks) addrs.push_back(reinterpret_cast<uintptr_t>(b.first));
  std::sort(addrs.begin(), addrs.end());
  if (std::adjacent_find(addrs.begin(), addrs.end()) != addrs.end()) {
    fprintf(stderr, "a block was handed out twice\n");
    ++problems;
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!verify(blocks[i].first, blocks[i].second, i + 1)) ++problems;
    hak_free(blocks[i].first);
  }
  problems += hak_check();
  return problems;
}

void in_thread(void (*f)(void*), void* arg) {
  std::thread t(f, arg);
  t.join();
}

// A block of a size class nothing else in the process uses, so the
// slab-state cases know which slab they hit.
constexpr size_t kLonelySize = 20480;

// ---- the cases ---------------------------------------------------------
// Each performs exactly one misuse as its last hak_ call.

void double_free_immediate() {
  void* p = hak_malloc(64);
  hak_free(p);
  hak_free(p);
}

void double_free_large() {
  void* p = hak_malloc(100000);
  hak_free(p);
  hak_free(p);
}

void double_free_huge() {
  void* p = hak_malloc(5u << 20);
  hak_free(p);
  hak_free(p);
}

void double_free_delayed() {
  // p is freed, then many other blocks of its class and of other classes
  // are freed after it, then p again.
  void* p = hak_malloc(100);
  std::vector<void*> same, other;
  for (int i = 0; i < 500; ++i) same.push_back(hak_malloc(100));
  for (int i = 0; i < 500; ++i) other.push_back(hak_malloc(16 + size_t(i) * 40));
  hak_free(p);
  for (void* q : same) hak_free(q);
  for (void* q : other) hak_free(q);
  hak_free(p);
}

void double_free_interleaved() {
  void* a = hak_malloc(48);
  void* b = hak_malloc(48);
  hak_free(a);
  hak_free(b);
  hak_free(a);
}

void double_free_from_other_thread() {
  // Freed by its owner, freed again by another thread (remote path).
  void* p = hak_malloc(256);
  hak_free(p);
  in_thread([](void* q) { hak_free(q); }, p);
}

void double_free_remote_then_owner() {
  // Freed by another thread (now on the slab's remote list), freed again
  // by its owner.
  void* p = hak_malloc(256);
  in_thread([](void* q) { hak_free(q); }, p);
  hak_free(p);
}

void double_free_remote_twice() {
  // Two other threads free the same block.
  void* p = hak_malloc(512);
  in_thread([](void* q) { hak_free(q); }, p);
  in_thread([](void* q) { hak_free(q); }, p);
}

void* g_exited_blocks[2];
size_t g_exited_size;

// A thread allocates two blocks of a class of its own, frees both and
// exits, so its slab is released (and, with HAKMEM_MEM_DIET=2, its pages
// returned to the OS, which erases the blocks' free tags).
void blocks_of_an_exited_thread(size_t size) {
  g_exited_size = size;
  in_thread(
      [](void*) {
        g_exited_blocks[0] = hak_malloc(g_exited_size);
        g_exited_blocks[1] = hak_malloc(g_exited_size);
        hak_free(g_exited_blocks[0]);
        hak_free(g_exited_blocks[1]);
      },
      nullptr);
}

void double_free_after_slab_released() {
  blocks_of_an_exited_thread(kLonelySize);
  hak_free(g_exited_blocks[1]);
}

// The released slab is claimed again by this thread (one allocation of the
// class, which takes the first block); the exited thread's second block is
// free in it again, then freed once more.
void double_free_after_slab_reused(size_t size) {
  blocks_of_an_exited_thread(size);
  void* fresh = hak_malloc(size);
  (void)fresh;  // still live: the slab stays ours
  hak_free(g_exited_blocks[1]);
}

// 20 KiB blocks: the second one is not yet carved when the slab is reused.
void double_free_after_slab_reused_uncarved() { double_free_after_slab_reused(kLonelySize); }
// 448-byte blocks: the first refill carves a page's worth, the second included.
void double_free_after_slab_reused_carved() { double_free_after_slab_reused(448); }

void free_stack() {
  char on_stack[64];
  hak_free(on_stack);
}

void free_global() { hak_free(g_global_buffer + 32); }

void free_mmap_page() {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  hak_free(page);
}

void free_system_malloc_block() {
  // The C library's malloc (or the sanitizer's): this binary does not
  // replace it.
  void* p = malloc(64);
  hak_free(p);
}

void free_wild_high() { hak_free(reinterpret_cast<void*>(uintptr_t{0xdead0000beef0000})); }

void free_interior_small() {
  char* p = static_cast<char*>(hak_malloc(64));
  hak_free(p + 16);
}

void free_misaligned_small() {
  char* p = static_cast<char*>(hak_malloc(64));
  hak_free(p + 1);
}

void free_interior_large() {
  char* p = static_cast<char*>(hak_malloc(100000));
  hak_free(p + 4096);
}

void free_interior_huge_far() {
  // Inside a later 2 MiB granule of a multi-granule mapping.
  char* p = static_cast<char*>(hak_malloc(5u << 20));
  hak_free(p + (3u << 20));
}

void free_chunk_header() {
  // The start of the chunk: hakmem's own metadata.
  void* p = hak_malloc(64);
  hak_free(reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(kChunk - 1)));
}

void free_block_of_unused_slab() {
  // A well-formed block address in a slab nobody has claimed.
  void* p = hak_malloc(kLonelySize);
  const uintptr_t chunk = reinterpret_cast<uintptr_t>(p) & ~(kChunk - 1);
  hak_free(reinterpret_cast<void*>(chunk + 31 * (size_t{64} << 10)));
}

void free_sized_block_of_unused_slab() {
  // The same, through hak_free_sized: the error found on the remote path
  // names the function the program called.
  void* p = hak_malloc(kLonelySize);
  const uintptr_t chunk = reinterpret_cast<uintptr_t>(p) & ~(kChunk - 1);
  hak_free_sized(reinterpret_cast<void*>(chunk + 31 * (size_t{64} << 10)), kLonelySize);
}

void realloc_freed_small() {
  void* p = hak_malloc(64);
  hak_free(p);
  hak_realloc(p, 200);
}

void realloc_freed_large() {
  void* p = hak_malloc(100000);
  hak_free(p);
  hak_realloc(p, 300000);
}

void realloc_interior() {
  char* p = static_cast<char*>(hak_malloc(64));
  hak_realloc(p + 8, 200);
}

void realloc_foreign() {
  char on_stack[64];
  hak_realloc(on_stack, 200);
}

void free_sized_too_large() { hak_free_sized(hak_malloc(100), 1000); }

void free_sized_too_small() { hak_free_sized(hak_malloc(1000), 10); }

void free_sized_large_block() { hak_free_sized(hak_malloc(100000), 3u << 20); }

void free_sized_foreign() {
  char on_stack[64];
  hak_free_sized(on_stack, 64);
}

struct Case {
  const char* name;
  void (*run)();
  const char* function;  // as hakmem names it in the message
  const char* what;      // regex of the message's middle part
  const char* env;       // extra NAME=value for the process, or null
};

const Case kCases[] = {
    {"double_free_immediate", double_free_immediate, "free", "double free", nullptr},
    {"double_free_large", double_free_large, "free", "double free", nullptr},
    {"double_free_huge", double_free_huge, "free", "double free", nullptr},
    {"double_free_delayed", double_free_delayed, "free", "double free", nullptr},
    {"double_free_interleaved", double_free_interleaved, "free", "double free", nullptr},
    {"double_free_from_other_thread", double_free_from_other_thread, "free", "double free", nullptr},
    {"double_free_remote_then_owner", double_free_remote_then_owner, "free", "double free", nullptr},
    {"double_free_remote_twice", double_free_remote_twice, "free", "double free", nullptr},
    {"double_free_after_slab_released", double_free_after_slab_released, "free", "double free",
     nullptr},
    {"double_free_after_slab_released_and_decommitted", double_free_after_slab_released, "free",
     "double free \\(block of an unused slab\\)", "HAKMEM_MEM_DIET=2"},
    {"double_free_after_slab_reused", double_free_after_slab_reused_uncarved, "free",
     "double free", nullptr},
    {"double_free_after_slab_reused_carved", double_free_after_slab_reused_carved, "free",
     "double free", nullptr},
    {"double_free_after_slab_decommitted_and_reused", double_free_after_slab_reused_carved, "free",
     "double free", "HAKMEM_MEM_DIET=2"},
    {"free_stack", free_stack, "free", "pointer was not allocated by hakmem", nullptr},
    {"free_global", free_global, "free", "pointer was not allocated by hakmem", nullptr},
    {"free_mmap_page", free_mmap_page, "free", "pointer was not allocated by hakmem", nullptr},
    {"free_system_malloc_block", free_system_malloc_block, "free",
     "pointer was not allocated by hakmem", nullptr},
    {"free_wild_high", free_wild_high, "free", "pointer was not allocated by hakmem", nullptr},
    {"free_interior_small", free_interior_small, "free",
     "pointer is not the start of a hakmem block", nullptr},
    {"free_misaligned_small", free_misaligned_small, "free",
     "pointer is not the start of a hakmem block", nullptr},
    {"free_interior_large", free_interior_large, "free",
     "pointer is not the start of a hakmem block", nullptr},
    {"free_interior_huge_far", free_interior_huge_far, "free",
     "pointer is not the start of a hakmem block", nullptr},
    {"free_chunk_header", free_chunk_header, "free", "pointer is not the start of a hakmem block",
     nullptr},
    {"free_block_of_unused_slab", free_block_of_unused_slab, "free",
     "double free \\(block of an unused slab\\)", nullptr},
    {"free_sized_block_of_unused_slab", free_sized_block_of_unused_slab, "free_sized",
     "double free \\(block of an unused slab\\)", nullptr},
    {"realloc_freed_small", realloc_freed_small, "realloc", "double free", nullptr},
    {"realloc_freed_large", realloc_freed_large, "realloc", "double free", nullptr},
    {"realloc_interior", realloc_interior, "realloc", "pointer is not the start of a hakmem block",
     nullptr},
    {"realloc_foreign", realloc_foreign, "realloc", "pointer was not allocated by hakmem", nullptr},
    {"free_sized_too_large", free_sized_too_large, "free_sized",
     "sized delete with a size that does not match the block \\(size 1000\\)", nullptr},
    {"free_sized_too_small", free_sized_too_small, "free_sized",
     "sized delete with a size that does not match the block \\(size 10\\)", nullptr},
    {"free_sized_large_block", free_sized_large_block, "free_sized",
     "sized delete with a size that does not match the block \\(size 3145728\\)", nullptr},
    {"free_sized_foreign", free_sized_foreign, "free_sized", "pointer was not allocated by hakmem",
     nullptr},
};

std::string message_regex(const Case& c, const char* ending) {
  return std::string("hakmem: ") + c.function + "\\(0x[0-9a-f]+\\): " + c.what + "; " + ending;
}

// Sets the case's environment for the death-test child (which re-executes
// this binary, so hakmem reads its configuration afresh there) and clears
// it again afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* on_error, const char* extra) {
    if (on_error != nullptr) {
      setenv("HAKMEM_ON_ERROR", on_error, 1);
    } else {
      unsetenv("HAKMEM_ON_ERROR");
    }
    if (extra != nullptr) {
      const std::string e = extra;
      name_ = e.substr(0, e.find('='));
      setenv(name_.c_str(), e.substr(e.find('=') + 1).c_str(), 1);
    }
  }
  ~ScopedEnv() {
    unsetenv("HAKMEM_ON_ERROR");
    if (!name_.empty()) unsetenv(name_.c_str());
  }

 private:
  std::string name_;
};

class BadInput : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_P(BadInput, AbortsWithMessageByDefault) {
  const Case& c = GetParam();
  ScopedEnv env(nullptr, c.env);
  EXPECT_EXIT(
      {
        c.run();
        // Not reached if the misuse was caught.
        fprintf(stderr, "not detected\n");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGABRT), message_regex(c, "aborting"));
}

TEST_P(BadInput, ContinueReportsIgnoresAndStaysConsistent) {
  const Case& c = GetParam();
  ScopedEnv env("continue", c.env);
  EXPECT_EXIT(
      {
        c.run();
        const size_t problems = heap_still_works();
        fprintf(stderr, "\nheap problems after the bad call: %zu\n", problems);
        _exit(problems == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      message_regex(c, "ignored\n") + "(.|\n)*heap problems after the bad call: 0\n");
}

INSTANTIATE_TEST_SUITE_P(Matrix, BadInput, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

// Exactly one report line per misuse, even for several in a row.
TEST(BadInputReport, OneLinePerMisuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ScopedEnv env("continue", nullptr);
  EXPECT_EXIT(
      {
        double_free_immediate();
        free_stack();
        free_interior_small();
        fprintf(stderr, "done\n");
        _exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^hakmem: free\\(0x[0-9a-f]+\\): double free; ignored\n"
      "hakmem: free\\(0x[0-9a-f]+\\): pointer was not allocated by hakmem; ignored\n"
      "hakmem: free\\(0x[0-9a-f]+\\): pointer is not the start of a hakmem block; ignored\n"
      "done\n$");
}

// The one double free the free path cannot see: the block's slab was
// released with its pages returned to the OS (which zeroes the free tags),
// then claimed again, and the block lies in the part not carved into blocks
// yet. Telling it from a live block would cost the fast path a load of the
// slab's carve cursor. It does not go unnoticed: hak_check() reports the
// block in the never-used area.
TEST(BadInputLimits, FreeOfNeverCarvedBlockOfReusedSlabIsCaughtByCheck) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ScopedEnv env("continue", "HAKMEM_MEM_DIET=2");
  EXPECT_EXIT(
      {
        double_free_after_slab_reused_uncarved();
        fprintf(stderr, "check: %zu\n", hak_check());
        _exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^hakmem: check: class [0-9]+: free-list block in the never-used area \\(double free\\?\\) "
      "at 0x[0-9a-f]+\ncheck: 1\n$");
}

// ---- impossible requests: NULL and errno, no report, heap unharmed ------

class ImpossibleRequest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(hak_check(), 0u); }
};

TEST_F(ImpossibleRequest, CallocOverflow) {
  const size_t pairs[][2] = {{SIZE_MAX / 2, 3},
                             {SIZE_MAX, SIZE_MAX},
                             {size_t{1} << 33, size_t{1} << 33},
                             {SIZE_MAX, 2},
                             {2, SIZE_MAX / 2 + 1}};
  for (auto& pr : pairs) {
    errno = 0;
    EXPECT_EQ(hak_calloc(pr[0], pr[1]), nullptr) << pr[0] << " x " << pr[1];
    EXPECT_EQ(errno, ENOMEM);
  }
}

TEST_F(ImpossibleRequest, ReallocarrayOverflowKeepsTheBlock) {
  void* p = hak_malloc(100);
  fill(p, 100, 7);
  errno = 0;
  EXPECT_EQ(hak_reallocarray(p, SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(verify(p, 100, 7));
  hak_free(p);
}

TEST_F(ImpossibleRequest, HugeMalloc) {
  const size_t sizes[] = {SIZE_MAX,
                          SIZE_MAX - 4095,
                          SIZE_MAX / 2 + 1,
                          size_t(PTRDIFF_MAX),
                          size_t{1} << 47,
                          (size_t{1} << 47) - (size_t{2} << 20)};
  for (size_t n : sizes) {
    errno = 0;
    EXPECT_EQ(hak_malloc(n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    errno = 0;
    EXPECT_EQ(hak_calloc(1, n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    errno = 0;
    EXPECT_EQ(hak_aligned_alloc(4096, n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
  }
}

TEST_F(ImpossibleRequest, HugeReallocKeepsTheBlock) {
  for (size_t start : {size_t{100}, size_t{100000}}) {
    void* p = hak_malloc(start);
    fill(p, start, 9);
    errno = 0;
    EXPECT_EQ(hak_realloc(p, SIZE_MAX), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(hak_realloc(p, SIZE_MAX / 2), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_TRUE(verify(p, start, 9));
    EXPECT_EQ(hak_owns(p), 1);
    hak_free(p);
  }
}

TEST_F(ImpossibleRequest, BadAlignments) {
  for (size_t a : {size_t{0}, size_t{3}, size_t{24}, size_t{48}, size_t{100}, size_t{4097},
                   SIZE_MAX, (size_t{1} << 63) + 1}) {
    errno = 0;
    EXPECT_EQ(hak_aligned_alloc(a, 64), nullptr) << a;
    EXPECT_EQ(errno, EINVAL) << a;
    void* out = reinterpret_cast<void*>(0x1234);
    EXPECT_EQ(hak_posix_memalign(&out, a, 64), EINVAL) << a;
    EXPECT_EQ(out, reinterpret_cast<void*>(0x1234)) << "posix_memalign wrote *out on failure";
  }
  // posix_memalign also requires a multiple of sizeof(void*).
  for (size_t a : {size_t{1}, size_t{2}, size_t{4}}) {
    void* out = reinterpret_cast<void*>(0x1234);
    EXPECT_EQ(hak_posix_memalign(&out, a, 64), EINVAL) << a;
    EXPECT_EQ(out, reinterpret_cast<void*>(0x1234));
  }
}

TEST_F(ImpossibleRequest, HugeValidAlignment) {
  // A power of two no mapping can honour: NULL with ENOMEM (or, if the
  // kernel finds the room, a correctly aligned block).
  for (unsigned shift : {40u, 46u, 50u, 62u, 63u}) {
    const size_t a = size_t{1} << shift;
    errno = 0;
    void* p = hak_aligned_alloc(a, 64);
    if (p == nullptr) {
      EXPECT_EQ(errno, ENOMEM) << shift;
    } else {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % a, 0u) << shift;
      hak_free(p);
    }
    void* out = nullptr;
    const int err = hak_posix_memalign(&out, a, 64);
    if (err == 0) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(out) % a, 0u) << shift;
      hak_free(out);
    } else {
      EXPECT_EQ(err, ENOMEM) << shift;
    }
  }
}

TEST_F(ImpossibleRequest, NullIsNotAnError) {
  hak_free(nullptr);
  hak_free_sized(nullptr, 100);
  void* p = hak_realloc(nullptr, 100);
  ASSERT_NE(p, nullptr);
  hak_free(p);
  EXPECT_EQ(hak_usable_size(nullptr), 0u);
  EXPECT_EQ(hak_owns(nullptr), 0);
}

TEST_F(ImpossibleRequest, QueriesOnBadPointersReportNothing) {
  // hak_usable_size and hak_owns answer 0 for anything that is not a live
  // block, without a report.
  char on_stack[64];
  char* small = static_cast<char*>(hak_malloc(64));
  char* large = static_cast<char*>(hak_malloc(3u << 20));
  void* freed = hak_malloc(64);
  hak_free(freed);
  void* freed_large = hak_malloc(5u << 20);
  hak_free(freed_large);
  const void* wild = reinterpret_cast<void*>(uintptr_t{0xdead0000beef0000});
  const void* bad[] = {on_stack, g_global_buffer, small + 8, small + 1, large + 64,
                       freed, freed_large, wild};
  for (const void* p : bad) EXPECT_EQ(hak_owns(p), 0) << p;
  // hak_usable_size validates large blocks but, for speed, trusts that a
  // pointer into a chunk is a live block (malloc_usable_size's contract).
  const void* not_blocks[] = {on_stack, g_global_buffer, large + 64, freed_large, wild};
  for (const void* p : not_blocks) {
    EXPECT_EQ(hak_usable_size(p), 0u) << p;
  }
  EXPECT_EQ(hak_owns(small), 1);
  EXPECT_GE(hak_usable_size(small), 64u);
  hak_free(small);
  hak_free(large);
}

}  // namespace
