// fork() while other threads allocate: hakmem takes no locks, so a child
// must never inherit a held lock and hang, and the state it inherits from
// threads stopped mid-operation (a half-done expansion, a claim, a remote
// push) must leave it a working heap.
//
// Background threads allocate, free across threads and grow size classes
// continuously; the test forks repeatedly (from the main thread and from a
// busy allocating thread, and once more from inside a child). Each child
// allocates, verifies and frees across small and large sizes, frees blocks
// allocated before the fork by threads that do not exist in the child,
// runs hak_check(), and exits. A child that does not exit within the
// timeout is a hang and fails the test, as does any crash or nonzero exit.
//
// Built twice: fork_test uses the hak_ API only (also run under TSan and
// ASan), fork_overrides_test links the malloc overrides and also uses
// malloc, new, std::string and stdio in the child.
#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stress_util.h"

namespace {

using hakmem_test::fill;
using hakmem_test::random_size;
using hakmem_test::Rng;
using hakmem_test::tagged_id;
using hakmem_test::tagged_size;
using hakmem_test::verify;

#if defined(__SANITIZE_THREAD__)
constexpr unsigned kForks = 30;
#elif defined(__SANITIZE_ADDRESS__)
constexpr unsigned kForks = 60;
#else
constexpr unsigned kForks = 150;
#endif
constexpr double kChildTimeoutSeconds = 20;

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// Waits for pid for at most `timeout` seconds. Returns a description of
// what went wrong, or "" if the child exited with status 0.
std::string wait_bounded(pid_t pid, double timeout) {
  const double deadline = now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return "waitpid failed";
    if (now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return "child hung (killed after the timeout)";
    }
    usleep(500);
  }
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 0) return "";
    return "child exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) return "child killed by signal " + std::to_string(WTERMSIG(status));
  return "child ended oddly";
}

// Blocks allocated before the fork, shared with the children (which free
// them) and kept by the parent.
struct Inherited {
  std::vector<void*> blocks;
};

// The child's work. Async-signal-safe in spirit for the hak_ build (no
// stdio, no malloc); the overrides build also exercises libc and libstdc++
// allocation. Returns the exit status.
int child_work(unsigned seed, const std::vector<void*>& inherited) {
  Rng r(seed);
  int bad = 0;
  // Blocks from before the fork: contents intact, then freed here (their
  // owners are threads that do not exist in this process).
  for (void* p : inherited) {
    if (!verify(p, tagged_size(p), tagged_id(p))) ++bad;
    hak_free(p);
  }
  void* mine[256];
  size_t sizes[256];
  for (unsigned round = 0; round < 4; ++round) {
    for (unsigned i = 0; i < 256; ++i) {
      sizes[i] = random_size(r, 32);
      mine[i] = hak_malloc(sizes[i]);
      if (mine[i] == nullptr) return 3;
      fill(mine[i], sizes[i], i + 1);
    }
    for (unsigned i = 0; i < 256; ++i) {
      if (!verify(mine[i], sizes[i], i + 1)) ++bad;
      hak_free(mine[i]);
    }
  }
#ifdef HAKMEM_FORK_TEST_OVERRIDES
  {
    std::vector<std::string> strings;
    for (unsigned i = 0; i < 200; ++i) strings.push_back(std::string(10 + i * 37, char('a' + i % 26)));
    char* buf = static_cast<char*>(malloc(100000));
    snprintf(buf, 100000, "%zu strings", strings.size());
    free(buf);
    auto* v = new std::vector<int>(1000, 7);
    delete v;
  }
#endif
  if (hak_check() != 0) ++bad;
  return bad == 0 ? 0 : 4;
}

class ForkTest : public ::testing::Test {};

TEST_F(ForkTest, RepeatedForksWhileThreadsAllocate) {
  constexpr unsigned kThreads = 4;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> background_ops{0};
  std::atomic<unsigned> forks_from_threads{0};
  std::atomic<int> thread_fork_failures{0};
  std::vector<std::atomic<void*>> exchange(256);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Rng r(t + 11);
      std::vector<std::pair<void*, size_t>> live;
      uint64_t ops = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        // A burst of one class, to keep expansions and slab claims going.
        const size_t burst = 64 + r.below(2000);
        void* b[64];
        for (void*& p : b) p = hak_malloc(burst);
        for (void* p : b) hak_free(p);
        for (unsigned k = 0; k < 32; ++k, ++ops) {
          if (live.size() < 128 && r.below(2) == 0) {
            const size_t n = random_size(r, 128);
            void* p = hak_malloc(n);
            if (p == nullptr) continue;
            fill(p, n, ops);
            live.emplace_back(p, n);
          } else if (!live.empty()) {
            auto [p, n] = live.back();
            live.pop_back();
            if (!verify(p, n, tagged_id(p))) ADD_FAILURE() << "background block corrupted";
            // Half of them cross threads through the exchange.
            void* other = exchange[r.below(exchange.size())].exchange(p, std::memory_order_acq_rel);
            if (other != nullptr) hak_free(other);
          }
        }
        // Thread 0 also forks now and then, mid-stream.
        if (t == 0 && r.below(64) == 0) {
          const pid_t pid = fork();
          if (pid == 0) _exit(child_work(unsigned(ops), {}));
          if (pid < 0 || !wait_bounded(pid, kChildTimeoutSeconds).empty()) {
            thread_fork_failures.fetch_add(1);
          }
          forks_from_threads.fetch_add(1);
        }
      }
      background_ops.fetch_add(ops);
      for (auto& [p, n] : live) hak_free(p);
    });
  }

  unsigned forked = 0, nested = 0;
  for (unsigned i = 0; i < kForks; ++i) {
    // Blocks the child will free: some ours, some from a thread that exits
    // before the fork (their slabs are abandoned in the child).
    std::vector<void*> inherited;
    for (unsigned k = 0; k < 8; ++k) {
      const size_t n = 16 + 31 * k * (i % 7 + 1) + (k == 7 ? 70000 : 0);
      void* p = hak_malloc(n);
      fill(p, n, i * 8 + k);
      inherited.push_back(p);
    }
    std::thread([&] {
      for (unsigned k = 0; k < 4; ++k) {
        void* p = hak_malloc(48 + k * 100);
        fill(p, 48 + k * 100, 1000 + k);
        inherited.push_back(p);
      }
    }).join();

    const pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
      int status = child_work(i, inherited);
      // Every tenth child forks once more (a fork of a fork).
      if (status == 0 && i % 10 == 0) {
        const pid_t grandchild = fork();
        if (grandchild == 0) _exit(child_work(i + 1, {}));
        if (grandchild < 0 || !wait_bounded(grandchild, kChildTimeoutSeconds).empty()) status = 5;
      }
      _exit(status);
    }
    const std::string problem = wait_bounded(pid, kChildTimeoutSeconds);
    ASSERT_EQ(problem, "") << "fork " << i;
    ++forked;
    if (i % 10 == 0) ++nested;
    // The parent still owns the blocks it gave the child a copy of.
    for (void* p : inherited) {
      ASSERT_TRUE(verify(p, tagged_size(p), tagged_id(p)));
      hak_free(p);
    }
  }
  stop = true;
  for (auto& th : threads) th.join();
  for (auto& slot : exchange) {
    if (void* p = slot.exchange(nullptr)) hak_free(p);
  }
  EXPECT_EQ(thread_fork_failures.load(), 0);
  EXPECT_EQ(hak_check(), 0u);
  printf("[reliability] fork: %u forks from the main thread (%u with a nested fork), %u from an "
         "allocating thread, %u threads allocating, %llu background operations\n",
         forked, nested, forks_from_threads.load(), kThreads,
         (unsigned long long)background_ops.load());
}

}  // namespace
