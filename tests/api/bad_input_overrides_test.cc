// The bad-input cases that need hakmem to be the process's malloc and
// operator new/delete (linked with malloc = "//:hakmem"): sized and aligned
// delete with the wrong size or alignment, array/non-array mismatches, a
// block from the C library's own malloc (reached through dlsym(RTLD_NEXT)),
// and the standard failure behaviour of new and malloc.
//
// Same conventions as bad_input_test.cc: a death test per case expecting
// SIGABRT and the exact message by default, and report-and-ignore with a
// consistent heap under HAKMEM_ON_ERROR=continue. Not run under the
// sanitizers (they own malloc); see docs/reliability.md.
#include <dlfcn.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stress_util.h"

namespace {

using hakmem_test::fill;
using hakmem_test::verify;

// Allocates, verifies and frees through malloc and new, then checks.
size_t heap_still_works() {
  size_t problems = hak_check();
  std::vector<std::pair<char*, size_t>> blocks;
  for (size_t i = 0; i < 400; ++i) {
    const size_t n = 16 + (i * 977) % 40000;
    char* p = i % 2 ? static_cast<char*>(malloc(n)) : new char[n];
    fill(p, n, i + 1);
    blocks.emplace_back(p, n);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (!verify(blocks[i].first, blocks[i].second, i + 1)) ++problems;
    if (i % 2) {
      free(blocks[i].first);
    } else {
      delete[] blocks[i].first;
    }
  }
  return problems + hak_check();
}

void* (*system_malloc())(size_t) {
  return reinterpret_cast<void* (*)(size_t)>(dlsym(RTLD_NEXT, "malloc"));
}

struct WithDestructor {
  ~WithDestructor() { value = 0; }
  int value = 1;
};

// ---- the cases ---------------------------------------------------------

void free_glibc_malloc_block() {
  void* p = system_malloc()(64);
  free(p);
}

void sized_delete_wrong_size() {
  void* p = ::operator new(100);
  ::operator delete(p, 1000);
}

void sized_delete_too_small() {
  void* p = ::operator new(3000);
  ::operator delete(p, 8);
}

void aligned_delete_wrong_alignment() {
  void* p = ::operator new(100, std::align_val_t(256));
  ::operator delete(p, 100, std::align_val_t(64));
}

void delete_stack_object() {
  int on_stack = 0;
  ::operator delete(&on_stack);
}

void delete_of_array_with_cookie() {
  // new[] of a type with a destructor stores the element count before the
  // elements, so `delete` (not delete[]) hands operator delete a pointer
  // 8 bytes into the block, with the size of one element.
  WithDestructor* a = new WithDestructor[4];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
  delete a;
#pragma GCC diagnostic pop
}

void delete_twice() {
  int* p = new int(5);
  delete p;
  ::operator delete(p);
}

void realloc_of_freed() {
  void* p = malloc(64);
  free(p);
  void* q = realloc(p, 100);
  (void)q;
}

struct Case {
  const char* name;
  void (*run)();
  const char* function;
  const char* what;
};

const Case kCases[] = {
    {"free_glibc_malloc_block", free_glibc_malloc_block, "free",
     "pointer was not allocated by hakmem"},
    {"sized_delete_wrong_size", sized_delete_wrong_size, "operator delete",
     "sized delete with a size that does not match the block \\(size 1000\\)"},
    {"sized_delete_too_small", sized_delete_too_small, "operator delete",
     "sized delete with a size that does not match the block \\(size 8\\)"},
    {"aligned_delete_wrong_alignment", aligned_delete_wrong_alignment, "operator delete",
     "sized delete with a size that does not match the block \\(size 100\\)"},
    {"delete_stack_object", delete_stack_object, "operator delete", "pointer was not allocated by hakmem"},
    {"delete_of_array_with_cookie", delete_of_array_with_cookie, "operator delete",
     "sized delete with a size that does not match the block \\(size 4\\)"},
    {"delete_twice", delete_twice, "operator delete", "double free"},
    {"realloc_of_freed", realloc_of_freed, "realloc", "double free"},
};

class ScopedOnError {
 public:
  explicit ScopedOnError(const char* v) {
    if (v) {
      setenv("HAKMEM_ON_ERROR", v, 1);
    } else {
      unsetenv("HAKMEM_ON_ERROR");
    }
  }
  ~ScopedOnError() { unsetenv("HAKMEM_ON_ERROR"); }
};

std::string message_regex(const Case& c, const char* ending) {
  return std::string("hakmem: ") + c.function + "\\(0x[0-9a-f]+\\): " + c.what + "; " + ending;
}

class BadInputOverrides : public ::testing::TestWithParam<Case> {
 protected:
  // The death-test child re-executes this binary, so hakmem reads
  // HAKMEM_ON_ERROR at the child's first malloc.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_P(BadInputOverrides, AbortsWithMessageByDefault) {
  const Case& c = GetParam();
  ScopedOnError env(nullptr);
  EXPECT_EXIT(
      {
        c.run();
        fprintf(stderr, "not detected\n");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGABRT), message_regex(c, "aborting"));
}

TEST_P(BadInputOverrides, ContinueReportsIgnoresAndStaysConsistent) {
  const Case& c = GetParam();
  ScopedOnError env("continue");
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

INSTANTIATE_TEST_SUITE_P(Matrix, BadInputOverrides, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

// new/new[] and delete/delete[] of trivially destructible types produce
// identical blocks and calls; hakmem keeps no record of the form used, so
// the mismatch is not detectable (and, for such types, harmless here).
TEST(BadInputOverridesLimits, ArrayMismatchOfTrivialTypesIsNotDetected) {
  void* a = ::operator new[](100);
  ::operator delete(a);
  void* b = ::operator new(100);
  ::operator delete[](b);
  EXPECT_EQ(hak_check(), 0u);
}

// ---- standard failure behaviour ----------------------------------------

TEST(OverridesFailures, NewThrowsBadAlloc) {
  EXPECT_THROW(::operator new(SIZE_MAX), std::bad_alloc);
  EXPECT_THROW(::operator new[](SIZE_MAX / 2), std::bad_alloc);
  EXPECT_THROW(::operator new(size_t{1} << 50, std::align_val_t(64)), std::bad_alloc);
  EXPECT_EQ(::operator new(SIZE_MAX, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](SIZE_MAX, std::nothrow), nullptr);
  EXPECT_EQ(::operator new(SIZE_MAX, std::align_val_t(4096), std::nothrow), nullptr);
  EXPECT_EQ(hak_check(), 0u);
}

TEST(OverridesFailures, NewHandlerIsCalledUntilItGivesUp) {
  static int calls;
  calls = 0;
  std::set_new_handler([] {
    if (++calls == 3) std::set_new_handler(nullptr);
  });
  EXPECT_THROW(::operator new(SIZE_MAX), std::bad_alloc);
  EXPECT_EQ(calls, 3);
  std::set_new_handler(nullptr);
}

TEST(OverridesFailures, CFamilyImpossibleRequests) {
  errno = 0;
  EXPECT_EQ(malloc(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(calloc(SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(pvalloc(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(valloc(SIZE_MAX - 100), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(aligned_alloc(24, 100), nullptr);
  EXPECT_EQ(errno, EINVAL);
  void* out = nullptr;
  EXPECT_EQ(posix_memalign(&out, 2, 100), EINVAL);
  EXPECT_EQ(posix_memalign(&out, 64, SIZE_MAX), ENOMEM);
  void* p = malloc(10);
  errno = 0;
  EXPECT_EQ(reallocarray(p, SIZE_MAX, 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  free(p);
  EXPECT_EQ(hak_check(), 0u);
}

}  // namespace
