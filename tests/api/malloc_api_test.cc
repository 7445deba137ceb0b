// The C allocation family and every C++ operator new/delete, through hakmem's
// real overrides (api/malloc_overrides.cc): this binary is linked with
// malloc = "//:hakmem", so gtest, libstdc++ and glibc allocate from hakmem
// too.
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "tests/support/pattern.h"
#include "tests/support/test_util.h"

// Keep the compiler from folding or removing allocation calls whose results
// it can reason about (it may assume malloc(SIZE_MAX) fails, for example).
template <class T>
T opaque(T v) {
  asm volatile("" : "+r"(v));
  return v;
}
// Makes an allocation's result observable, so it cannot be elided.
void* volatile g_sink;
template <class T>
T* sink(T* p) {
  g_sink = p;
  return p;
}

namespace {

using hakmem_test::check_pattern;
using hakmem_test::fill_pattern;

constexpr size_t kMiB = size_t{1} << 20;

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

TEST(MallocApi, EverythingGoesThroughHakmem) {
  void* m = malloc(10);
  char* s = strdup("hakmem");  // glibc allocates internally with malloc
  int* n = new int(5);
  std::string long_string(1000, 'x');
  EXPECT_TRUE(hak_owns(m));
  EXPECT_TRUE(hak_owns(s));
  EXPECT_TRUE(hak_owns(n));
  EXPECT_TRUE(hak_owns(long_string.data()));
  char* printed = nullptr;
  ASSERT_GT(asprintf(&printed, "%d-%s", 42, s), 0);
  EXPECT_TRUE(hak_owns(printed));
  EXPECT_STREQ(printed, "42-hakmem");
  free(printed);
  delete n;
  free(s);
  free(m);
}

TEST(MallocApi, MallocZeroIsUniqueAndNonNull) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 2000; ++i) {
    void* p = malloc(opaque(size_t{0}));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second) << "malloc(0) returned a live pointer twice";
    blocks.push_back(p);
  }
  for (void* p : blocks) free(p);
  free(nullptr);
}

TEST(MallocApi, ImpossibleSizesFailWithEnomem) {
  for (size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, size_t{1} << 48}) {
    errno = 0;
    EXPECT_EQ(malloc(opaque(size)), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
  }
  const size_t overflowing[][2] = {
      {SIZE_MAX, 2}, {SIZE_MAX / 2, 3}, {size_t{1} << 32, size_t{1} << 32}, {2, SIZE_MAX / 2 + 1}};
  for (const auto& c : overflowing) {
    errno = 0;
    EXPECT_EQ(calloc(opaque(c[0]), opaque(c[1])), nullptr) << c[0] << " x " << c[1];
    EXPECT_EQ(errno, ENOMEM);
  }
  void* p = calloc(opaque(size_t{0}), opaque(SIZE_MAX));  // 0 bytes: fine
  EXPECT_NE(p, nullptr);
  free(p);
}

TEST(MallocApi, CallocZeroes) {
  for (size_t size : {size_t{1}, size_t{100}, size_t{4000}, size_t{32768}, size_t{100000}, 3 * kMiB}) {
    std::vector<void*> dirty;
    for (int i = 0; i < 20; ++i) {
      void* p = malloc(size);
      memset(p, 0xee, size);
      dirty.push_back(p);
    }
    for (void* p : dirty) free(p);
    for (int i = 0; i < 20; ++i) {
      auto* p = static_cast<unsigned char*>(calloc(size, 1));
      ASSERT_NE(p, nullptr);
      // All zero iff the first byte is and every byte equals its successor.
      ASSERT_TRUE(p[0] == 0 && memcmp(p, p + 1, size - 1) == 0) << "calloc(" << size << ") not zeroed";
      dirty[i] = p;
    }
    for (void* p : dirty) free(p);
  }
}

struct ReallocCase {
  size_t from, to;
};

TEST(MallocApi, ReallocKeepsContents) {
  const ReallocCase cases[] = {
      {10, 100},       {100, 10},           // small -> small
      {1000, 1100},    {1100, 1000},        // within a class / neighbour
      {200, 200000},   {30000, 40000},      // small -> large
      {200000, 300},   {40000, 30000},      // large -> small
      {100000, 5 * kMiB}, {5 * kMiB, 100000},  // large -> large
      {3 * kMiB, 3 * kMiB + 1}, {64 * kMiB, 65 * kMiB},
  };
  for (const ReallocCase& c : cases) {
    void* p = malloc(c.from);
    ASSERT_NE(p, nullptr);
    fill_pattern(p, c.from, c.from);
    void* q = realloc(p, c.to);
    ASSERT_NE(q, nullptr) << c.from << " -> " << c.to;
    EXPECT_TRUE(check_pattern(q, std::min(c.from, c.to), c.from)) << c.from << " -> " << c.to;
    EXPECT_GE(malloc_usable_size(q), c.to);
    memset(q, 1, c.to);  // the whole new size is writable
    free(q);
  }
  // realloc(NULL, n) is malloc(n).
  void* p = realloc(nullptr, 50);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(hak_owns(p));
  // realloc(p, 0) frees p and returns NULL (as glibc does).
  EXPECT_EQ(realloc(p, 0), nullptr);
  EXPECT_FALSE(hak_owns(p));
  // A failed realloc leaves the block alone.
  for (size_t from : {size_t{100}, size_t{100000}}) {
    p = malloc(from);
    fill_pattern(p, from, 3);
    errno = 0;
    EXPECT_EQ(realloc(p, opaque(SIZE_MAX)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_TRUE(check_pattern(p, from, 3));
    free(p);
  }
}

TEST(MallocApi, Reallocarray) {
  void* p = reallocarray(nullptr, 10, 10);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 100, 5);
  errno = 0;
  EXPECT_EQ(reallocarray(p, opaque(SIZE_MAX / 8), 16), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_TRUE(check_pattern(p, 100, 5)) << "the block survives a failed reallocarray";
  p = reallocarray(p, 1000, 100);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(check_pattern(p, 100, 5));
  EXPECT_GE(malloc_usable_size(p), 100000u);
  free(p);
}

TEST(MallocApi, PosixMemalign) {
  for (size_t align = 1; align <= (size_t{1} << 24); align <<= 1) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{100}, align, 3 * align + 5, size_t{50000}}) {
      void* p = reinterpret_cast<void*>(0x1);
      errno = 4321;
      const int rc = posix_memalign(&p, align, size);
      if (align < sizeof(void*)) {
        EXPECT_EQ(rc, EINVAL) << align;
        EXPECT_EQ(p, reinterpret_cast<void*>(0x1));
        continue;
      }
      ASSERT_EQ(rc, 0) << align << " " << size;
      EXPECT_EQ(errno, 4321) << "posix_memalign must not touch errno";
      EXPECT_TRUE(aligned(p, align)) << p << " " << align;
      EXPECT_GE(malloc_usable_size(p), size);
      memset(p, 0x77, size);
      free(p);
    }
  }
  for (size_t bad : {size_t{0}, size_t{3}, size_t{12}, size_t{24}, size_t{100}, size_t{4095},
                     (size_t{1} << 20) + 8, SIZE_MAX}) {
    void* p = reinterpret_cast<void*>(0x1);
    errno = 4321;
    EXPECT_EQ(posix_memalign(&p, bad, 64), EINVAL) << bad;
    EXPECT_EQ(p, reinterpret_cast<void*>(0x1)) << "out must be untouched";
    EXPECT_EQ(errno, 4321);
  }
  void* p = reinterpret_cast<void*>(0x1);
  EXPECT_EQ(posix_memalign(&p, 64, opaque(SIZE_MAX)), ENOMEM);
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1));
}

TEST(MallocApi, AlignedAllocMemalignVallocPvalloc) {
  const long page = sysconf(_SC_PAGESIZE);
  for (size_t align = 1; align <= (size_t{1} << 24); align <<= 1) {
    for (size_t size : {size_t{1}, size_t{64}, align, 2 * align, size_t{70000}}) {
      void* a = aligned_alloc(align, size);
      void* m = memalign(align, size);
      ASSERT_NE(a, nullptr) << align << " " << size;
      ASSERT_NE(m, nullptr) << align << " " << size;
      EXPECT_TRUE(aligned(a, align)) << a << " " << align;
      EXPECT_TRUE(aligned(m, align)) << m << " " << align;
      EXPECT_GE(malloc_usable_size(a), size);
      EXPECT_GE(malloc_usable_size(m), size);
      memset(a, 1, size);
      memset(m, 2, size);
      free(a);
      free(m);
    }
  }
  for (size_t bad : {size_t{0}, size_t{3}, size_t{24}, size_t{100}}) {
    errno = 0;
    EXPECT_EQ(aligned_alloc(opaque(bad), 64), nullptr) << bad;
    EXPECT_EQ(errno, EINVAL) << bad;
  }
  // memalign follows glibc: other alignments are rounded up to a power of two.
  for (size_t odd : {size_t{0}, size_t{3}, size_t{24}, size_t{100}, size_t{5000}, (size_t{1} << 21) + 1}) {
    void* m = memalign(opaque(odd), 100);
    ASSERT_NE(m, nullptr) << odd;
    size_t pow2 = 1;
    while (pow2 < odd) pow2 <<= 1;
    EXPECT_TRUE(aligned(m, pow2)) << m << " " << odd;
    free(m);
  }
  errno = 0;
  EXPECT_EQ(memalign(opaque(SIZE_MAX), 100), nullptr);
  EXPECT_EQ(errno, EINVAL);
  for (size_t size : {size_t{0}, size_t{1}, size_t(page), size_t(page) + 1, 10 * kMiB}) {
    void* v = valloc(size);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(aligned(v, size_t(page)));
    EXPECT_GE(malloc_usable_size(v), size);
    void* pv = pvalloc(size);
    ASSERT_NE(pv, nullptr);
    EXPECT_TRUE(aligned(pv, size_t(page)));
    // pvalloc rounds the size up to whole pages (at least one).
    const size_t rounded = size == 0 ? size_t(page) : (size + size_t(page) - 1) / size_t(page) * size_t(page);
    EXPECT_GE(malloc_usable_size(pv), rounded) << size;
    memset(pv, 3, rounded);
    free(v);
    free(pv);
  }
  errno = 0;
  EXPECT_EQ(pvalloc(opaque(SIZE_MAX - 10)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(valloc(opaque(SIZE_MAX - 10)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(MallocApi, MallocUsableSize) {
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
  for (size_t size = 0; size < 300000; size = size * 5 / 4 + 1) {
    void* p = malloc(size);
    const size_t usable = malloc_usable_size(p);
    EXPECT_GE(usable, size);
    memset(p, 0x42, usable);  // usable bytes really are usable
    free(p);
  }
}

// ---- C++

struct Plain {
  char bytes[40];
};
struct WithDtor {
  char bytes[24];
  ~WithDtor() { bytes[0] = 0; }
};
template <size_t A>
struct alignas(A) Over {
  char bytes[A < 64 ? 64 : A / 2 + 8];
};

template <class T>
void exercise_new_forms() {
  T* one = new T;
  EXPECT_TRUE(aligned(one, alignof(T)));
  EXPECT_TRUE(hak_owns(one));
  memset(static_cast<void*>(one), 1, sizeof(T));
  delete one;  // sized (and aligned, for over-aligned T) delete
  T* many = new T[7];
  EXPECT_TRUE(aligned(many, alignof(T)));
  memset(static_cast<void*>(many), 2, sizeof(T) * 7);
  delete[] many;
  T* nt = new (std::nothrow) T;
  ASSERT_NE(nt, nullptr);
  EXPECT_TRUE(aligned(nt, alignof(T)));
  delete nt;
  T* nta = new (std::nothrow) T[3];
  ASSERT_NE(nta, nullptr);
  EXPECT_TRUE(aligned(nta, alignof(T)));
  delete[] nta;
}

TEST(OperatorNew, EveryExpressionForm) {
  exercise_new_forms<Plain>();
  exercise_new_forms<WithDtor>();
  exercise_new_forms<Over<32>>();
  exercise_new_forms<Over<64>>();
  exercise_new_forms<Over<256>>();
  exercise_new_forms<Over<4096>>();
  exercise_new_forms<Over<8192>>();
  exercise_new_forms<Over<(1 << 16)>>();
  exercise_new_forms<Over<(1 << 21)>>();
}

TEST(OperatorNew, EveryFunctionDirectly) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{100}, size_t{5000}, size_t{100000}}) {
    void* p = sink(::operator new(size));
    ::operator delete(p);
    p = ::operator new(size);
    ::operator delete(p, size);
    p = ::operator new[](size);
    ::operator delete[](p);
    p = ::operator new[](size);
    ::operator delete[](p, size);
    p = ::operator new(size, std::nothrow);
    ASSERT_NE(p, nullptr);
    ::operator delete(p, std::nothrow);
    p = ::operator new[](size, std::nothrow);
    ASSERT_NE(p, nullptr);
    ::operator delete[](p, std::nothrow);
    for (size_t a = 1; a <= (size_t{1} << 22); a <<= 3) {
      const auto al = std::align_val_t(a);
      p = ::operator new(size, al);
      EXPECT_TRUE(aligned(p, a)) << size << " " << a;
      ::operator delete(p, al);
      p = ::operator new(size, al);
      ::operator delete(p, size, al);
      p = ::operator new[](size, al);
      EXPECT_TRUE(aligned(p, a));
      ::operator delete[](p, al);
      p = ::operator new[](size, al);
      ::operator delete[](p, size, al);
      p = ::operator new(size, al, std::nothrow);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(aligned(p, a));
      ::operator delete(p, al, std::nothrow);
      p = ::operator new[](size, al, std::nothrow);
      ASSERT_NE(p, nullptr);
      ::operator delete[](p, al, std::nothrow);
    }
  }
}

TEST(OperatorNew, ImpossibleSizeThrowsBadAlloc) {
  const size_t huge = opaque(SIZE_MAX - 100);
  EXPECT_THROW(sink(::operator new(huge)), std::bad_alloc);
  EXPECT_THROW(sink(::operator new[](huge)), std::bad_alloc);
  EXPECT_THROW(sink(::operator new(huge, std::align_val_t(64))), std::bad_alloc);
  EXPECT_THROW(sink(::operator new[](huge, std::align_val_t(1 << 21))), std::bad_alloc);
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::nothrow), nullptr);
  EXPECT_EQ(::operator new(huge, std::align_val_t(64), std::nothrow), nullptr);
  EXPECT_EQ(::operator new[](huge, std::align_val_t(4096), std::nothrow), nullptr);
  // std::vector reports the failure as bad_alloc (or length_error) too.
  std::vector<char> v;
  EXPECT_ANY_THROW(v.reserve(opaque(size_t{1} << 50)));
}

int g_handler_calls = 0;
void counting_handler() {
  if (++g_handler_calls == 3) std::set_new_handler(nullptr);
}
void throwing_handler() {
  ++g_handler_calls;
  throw std::bad_alloc();
}

TEST(OperatorNew, NewHandlerIsCalledUntilRemoved) {
  const size_t huge = opaque(SIZE_MAX - 100);
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  EXPECT_THROW(sink(::operator new(huge)), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 3);

  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  EXPECT_THROW(sink(::operator new(huge, std::align_val_t(256))), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 3);

  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  EXPECT_EQ(::operator new(huge, std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 3) << "nothrow new calls the handler too";

  g_handler_calls = 0;
  std::set_new_handler(throwing_handler);
  EXPECT_THROW(sink(::operator new[](huge)), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 1);
  g_handler_calls = 0;
  EXPECT_EQ(::operator new[](huge, std::align_val_t(64), std::nothrow), nullptr);
  EXPECT_EQ(g_handler_calls, 1);
  std::set_new_handler(nullptr);

  // A handler is not called when memory is available.
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  delete sink(new int(1));
  EXPECT_EQ(g_handler_calls, 0);
  std::set_new_handler(nullptr);
}

TEST(MallocApi, StandardLibraryWorkloadAcrossThreads) {
  // Containers built in one thread, mutated and destroyed in others.
  std::vector<std::map<int, std::string>> maps(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) maps[t][i * 7 % 5003] = std::string(size_t(i % 300), char('a' + t));
    });
  }
  for (auto& th : threads) th.join();
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto& m = maps[(t + 1) % 4];
      for (auto it = m.begin(); it != m.end();) {
        if (it->first % 2) {
          it = m.erase(it);
        } else {
          it->second += "tail";
          ++it;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    for (const auto& [k, v] : maps[t]) {
      ASSERT_EQ(k % 2, 0);
      ASSERT_EQ(v.substr(v.size() - 4), "tail");
      if (v.size() > 4) ASSERT_EQ(v[0], char('a' + t));
    }
  }
  maps.clear();
  EXPECT_EQ(hak_check(), 0u);
}

// HAKMEM_PREWARM with the overrides linked in: hakmem initialises at the
// process's first allocation, before main(), and maps the chunks then.
HAKMEM_CHILD(prewarm_at_start) {
  hak_stats st;
  st.version = HAK_STATS_VERSION;
  CHILD_CHECK(hak_get_stats(&st) == 0);
  const unsigned cls = hakmem::size_to_class(8000);
  printf("chunks of 8192 B: %llu\n", (unsigned long long)st.classes[cls].chunks);
  CHILD_CHECK(st.classes[cls].block_size == 8192);
  CHILD_CHECK(st.classes[cls].chunks == 5);
  return 0;
}

TEST(MallocApi, PrewarmAtProcessStart) {
  const hakmem_test::ChildResult r =
      hakmem_test::run_child("prewarm_at_start", {"HAKMEM_PREWARM=8000:5"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
}

}  // namespace
