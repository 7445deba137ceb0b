// Out of memory: in a child process whose address space is capped with
// setrlimit(RLIMIT_AS), every allocation entry point fails the standard way
// (NULL with errno ENOMEM, std::bad_alloc from new, the new_handler called),
// nothing crashes, blocks allocated before keep their contents, and once
// the limit is raised again the same process allocates normally and its
// heap is consistent.
//
// Links the malloc overrides (malloc = "//:hakmem"); not run under the
// sanitizers, whose shadow memory does not fit under an address-space cap.
#include <errno.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstdio>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stress_util.h"

namespace {

using hakmem_test::fill;
using hakmem_test::random_size;
using hakmem_test::Rng;
using hakmem_test::verify;

size_t address_space_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f != nullptr) {
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
  }
  return size_t(pages) * size_t(sysconf(_SC_PAGESIZE));
}

// Failures are counted, and printed at the end, rather than asserted: this
// runs in a death-test child.
int g_failures = 0;
#define CHECK_OR_COUNT(cond)                                            \
  do {                                                                  \
    if (!(cond)) {                                                      \
      ++g_failures;                                                     \
      fprintf(stderr, "oom: check failed at line %d: %s\n", __LINE__, #cond); \
    }                                                                   \
  } while (0)

struct Block {
  void* p;
  size_t n;
  uint64_t id;
};

// Allocates with malloc until it fails; every failure must be NULL+ENOMEM.
// Returns the number of successful allocations (kept in `out`).
size_t exhaust(std::vector<Block>& out, size_t size, size_t cap, uint64_t id_base) {
  size_t got = 0;
  for (size_t i = 0; i < cap; ++i) {
    errno = 0;
    void* p = malloc(size);
    if (p == nullptr) {
      CHECK_OR_COUNT(errno == ENOMEM);
      return got;
    }
    fill(p, size, id_base + i);
    out.push_back({p, size, id_base + i});
    ++got;
  }
  fprintf(stderr, "oom: %zu allocations of %zu bytes never failed\n", cap, size);
  ++g_failures;
  return got;
}

void* g_reserve = nullptr;

int run_oom_scenario() {
  Rng r(3);
  // Blocks from before the limit, small and large.
  std::vector<Block> earlier;
  for (uint64_t i = 0; i < 300; ++i) {
    const size_t n = i % 50 == 0 ? (size_t{1} << 20) + i : random_size(r, 32);
    void* p = malloc(n);
    fill(p, n, 100000 + i);
    earlier.push_back({p, n, 100000 + i});
  }
  g_reserve = malloc(size_t{2} << 20);  // a large block: a mapping of its own

  // Threads that will hit the limit concurrently, started before it.
  constexpr unsigned kThreads = 4;
  std::barrier ready(kThreads + 1), start(kThreads + 1), finish(kThreads + 1);
  std::atomic<unsigned> thread_nulls{0};
  std::atomic<unsigned> thread_bad_errno{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng tr(t + 50);
      std::vector<void*> mine;
      mine.reserve(200000);  // no allocation by the test itself under the limit
      ready.arrive_and_wait();
      start.arrive_and_wait();
      for (unsigned k = 0; k < 3; ++k) {  // run out three times
        for (;;) {
          errno = 0;
          void* p = malloc(tr.below(2) ? random_size(tr) : 300000);
          if (p == nullptr) {
            thread_nulls.fetch_add(1);
            if (errno != ENOMEM) thread_bad_errno.fetch_add(1);
            break;
          }
          static_cast<char*>(p)[0] = 1;
          if (mine.size() == mine.capacity()) {
            free(p);
            break;
          }
          mine.push_back(p);
        }
        // Give back half, then go again.
        size_t kept = 0;
        for (size_t i = 0; i < mine.size(); ++i) {
          if (i % 2 == 0) {
            free(mine[i]);
          } else {
            mine[kept++] = mine[i];
          }
        }
        mine.resize(kept);
      }
      for (void* p : mine) free(p);
      finish.arrive_and_wait();
    });
  }

  std::vector<Block> after;
  after.reserve(3000);
  std::vector<Block> oom_blocks;
  oom_blocks.reserve(1500000);  // the test's own bookkeeping must not need memory later
  ready.arrive_and_wait();  // the threads have set up; nothing else allocates
  struct rlimit old_limit;
  getrlimit(RLIMIT_AS, &old_limit);
  const size_t cap = address_space_bytes() + (size_t{48} << 20);
  struct rlimit limit = {cap, old_limit.rlim_max};
  if (setrlimit(RLIMIT_AS, &limit) != 0) {
    fprintf(stderr, "oom: setrlimit failed\n");
    return 1;
  }

  // --- single-threaded exhaustion, large then small ---
  const size_t large_got = exhaust(oom_blocks, size_t{1} << 20, 10000, 1);
  const size_t small_got = exhaust(oom_blocks, 64, 1400000, 20000000);
  fprintf(stderr, "oom: %zu 1 MiB blocks and %zu 64-byte blocks before NULL\n", large_got, small_got);
  fprintf(stderr, "oom: address space %zu MiB of a %zu MiB limit\n", address_space_bytes() >> 20, cap >> 20);
  CHECK_OR_COUNT(large_got < 10000);

  // Every other entry point fails cleanly too.
  errno = 0;
  CHECK_OR_COUNT(malloc(size_t{8} << 20) == nullptr && errno == ENOMEM);
  errno = 0;
  CHECK_OR_COUNT(calloc(1, size_t{8} << 20) == nullptr && errno == ENOMEM);
  errno = 0;
  CHECK_OR_COUNT(aligned_alloc(4096, size_t{8} << 20) == nullptr && errno == ENOMEM);
  void* out = nullptr;
  CHECK_OR_COUNT(posix_memalign(&out, 64, size_t{8} << 20) == ENOMEM);
  {
    // realloc that cannot grow keeps the old block intact.
    Block& b = earlier[1];
    errno = 0;
    CHECK_OR_COUNT(realloc(b.p, size_t{64} << 20) == nullptr && errno == ENOMEM);
    CHECK_OR_COUNT(verify(b.p, b.n, b.id));
  }
  bool threw = false;
  try {
    void* p = ::operator new(size_t{8} << 20);
    ::operator delete(p);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK_OR_COUNT(threw);
  threw = false;
  try {
    std::vector<char> v(size_t{16} << 20);
    v[0] = 1;
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  CHECK_OR_COUNT(threw);
  threw = false;
  try {
    std::string s;
    for (;;) s.append(size_t{1} << 20, 'x');
  } catch (const std::bad_alloc&) {
    threw = true;
  } catch (const std::length_error&) {
  }
  CHECK_OR_COUNT(threw);
  CHECK_OR_COUNT(::operator new(size_t{8} << 20, std::nothrow) == nullptr);
  CHECK_OR_COUNT(::operator new(size_t{8} << 20, std::align_val_t(4096), std::nothrow) == nullptr);
  // The new_handler frees the reserve; new then succeeds (the freed
  // mapping is reused).
  std::set_new_handler([] {
    free(g_reserve);
    g_reserve = nullptr;
    std::set_new_handler(nullptr);
  });
  void* rescued = nullptr;
  try {
    rescued = ::operator new(size_t{3} << 19);
  } catch (const std::bad_alloc&) {
  }
  CHECK_OR_COUNT(rescued != nullptr);
  ::operator delete(rescued);
  std::set_new_handler(nullptr);

  // --- four threads run out at the same time, three times each ---
  // Give some room back first so they have something to fight over.
  for (size_t i = 0; i < oom_blocks.size(); i += 3) {
    free(oom_blocks[i].p);
    oom_blocks[i].p = nullptr;
  }
  start.arrive_and_wait();
  finish.arrive_and_wait();
  for (auto& th : threads) th.join();
  fprintf(stderr, "oom: %u threads ran out of memory %u times at once\n", kThreads, thread_nulls.load());
  CHECK_OR_COUNT(thread_nulls.load() == kThreads * 3);
  CHECK_OR_COUNT(thread_bad_errno.load() == 0);

  // --- raise the limit again: the same process keeps working ---
  if (setrlimit(RLIMIT_AS, &old_limit) != 0) {
    fprintf(stderr, "oom: could not raise the limit again\n");
    return 1;
  }
  for (const Block& b : earlier) CHECK_OR_COUNT(verify(b.p, b.n, b.id));
  for (const Block& b : oom_blocks) {
    if (b.p != nullptr) CHECK_OR_COUNT(verify(b.p, b.n, b.id));
  }
  for (uint64_t i = 0; i < 3000; ++i) {
    const size_t n = i % 100 == 0 ? (size_t{3} << 20) : random_size(r, 64);
    void* p = malloc(n);
    CHECK_OR_COUNT(p != nullptr);
    if (p == nullptr) break;
    fill(p, n, 500000 + i);
    after.push_back({p, n, 500000 + i});
  }
  for (const Block& b : after) {
    CHECK_OR_COUNT(verify(b.p, b.n, b.id));
    free(b.p);
  }
  for (const Block& b : oom_blocks) free(b.p);
  for (const Block& b : earlier) free(b.p);
  CHECK_OR_COUNT(hak_check() == 0);
  fprintf(stderr, "oom: %d failures\n", g_failures);
  return g_failures == 0 ? 0 : 2;
}

// The scenario runs in a forked child (the limit must not touch the test
// runner); its report is copied to this test's output.
TEST(OutOfMemory, FailsCleanlyAndRecoversAfterTheLimitIsRaised) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    alarm(120);  // a hang is a failure, not a stuck test
    _exit(run_oom_scenario());
  }
  close(fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    report.append(buf, size_t(n));
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  printf("%s", report.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "child killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(report.find("oom: 0 failures\n"), std::string::npos);
}

}  // namespace
