// A program that links hakmem (malloc = "//:hakmem"), as a team's server
// does, built in every configuration tools/test.sh runs: default, TSan and
// ASan. Built with a sanitizer that brings its own allocator, hakmem's
// malloc and new step aside for it (api/malloc_overrides.cc) and the hak_
// API keeps working; otherwise hakmem serves malloc and new.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "api/hakmem.h"
#include "platform/sanitizer.h"
#include "tests/api/string_workload.h"
#include "tests/support/test_util.h"

namespace {

constexpr bool kSanitizerAllocator = HAKMEM_BUILT_WITH_SANITIZER_ALLOCATOR;

TEST(SanitizerBuild, StringWorkloadRunsToCompletion) {
  EXPECT_EQ(hakmem_test::run_string_workload(), 0u);
}

TEST(SanitizerBuild, MallocAndNewAreServedByTheBuildsAllocator) {
  void* p = malloc(24);
  int* q = new int(7);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(hak_owns(p) != 0, !kSanitizerAllocator);
  EXPECT_EQ(hak_owns(q) != 0, !kSanitizerAllocator);
  free(p);
  delete q;
}

TEST(SanitizerBuild, HakApiIsServedByHakmem) {
  void* p = hak_malloc(24);
  ASSERT_NE(p, nullptr);
  EXPECT_NE(hak_owns(p), 0);
  EXPECT_GE(hak_usable_size(p), 24u);
  p = hak_realloc(p, 5000);
  ASSERT_NE(p, nullptr);
  EXPECT_NE(hak_owns(p), 0);
  hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

HAKMEM_CHILD(allocate_a_little) {
  std::string s(100, 'x');
  hak_free(hak_malloc(64));
  return s.size() == 100 ? 0 : 1;
}

TEST(SanitizerBuild, HakmemLogSaysWhoServesMallocInOneLine) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("allocate_a_little", {"HAKMEM_LOG=1"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(hakmem_test::count_occurrences(r.err, "hakmem: built with "), kSanitizerAllocator ? 1u : 0u)
      << r.err;
  if (const char* name = hakmem::platform::kBuiltWithSanitizer) {
    EXPECT_NE(r.err.find(std::string("hakmem: built with ") + name +
                         ": its allocator serves malloc and new; the hak_ API is served by hakmem\n"),
              std::string::npos)
        << r.err;
  }
  // Without HAKMEM_LOG the build says nothing.
  const hakmem_test::ChildResult quiet = hakmem_test::run_child("allocate_a_little", {});
  ASSERT_TRUE(quiet.exited && quiet.exit_code == 0) << quiet.describe();
  EXPECT_EQ(quiet.err.find("hakmem:"), std::string::npos) << quiet.err;
}

#if HAKMEM_BUILT_WITH_ASAN || HAKMEM_BUILT_WITH_TSAN
// The control: the sanitizer watches the heap of a program that links
// hakmem, so it reports a heap bug there.
template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}

HAKMEM_CHILD(heap_bug) {
#if HAKMEM_BUILT_WITH_ASAN
  // opaque: neither the optimiser nor UBSan's object-size check knows the
  // block's size, so only the sanitizer's allocator can tell.
  char* p = opaque(static_cast<char*>(malloc(16)));
  static_cast<volatile char*>(p)[opaque(16)] = 1;  // volatile: not a dead store
  free(p);
#else
  int* shared = new int(0);
  std::thread a([shared] { for (int i = 0; i < 1000; ++i) ++*opaque(shared); });
  std::thread b([shared] { for (int i = 0; i < 1000; ++i) ++*opaque(shared); });
  a.join();
  b.join();
  delete shared;
#endif
  return 0;
}

TEST(SanitizerBuild, SanitizerReportsAHeapBug) {
  const hakmem_test::ChildResult r = hakmem_test::run_child("heap_bug", {});
  EXPECT_FALSE(r.exited && r.exit_code == 0) << r.describe();
#if HAKMEM_BUILT_WITH_ASAN
  EXPECT_NE(r.err.find("ERROR: AddressSanitizer: heap-buffer-overflow"), std::string::npos) << r.err;
#else
  EXPECT_NE(r.err.find("WARNING: ThreadSanitizer: data race"), std::string::npos) << r.err;
#endif
}
#endif

}  // namespace
