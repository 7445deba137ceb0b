// Threads racing the process's first allocation (core/alloc/process.cc,
// initialize_slow; docs/design.md 5.5). Each trial is a fresh child process,
// so hakmem starts uninitialised: 8 threads wait on one flag, then all call
// the hak_ API at once. One wins the election CAS and initialises; the
// others either spin until they load kReady or arrive after it and see it
// in ensure_initialized. Every thread then reads what the initialiser wrote
// (the free-tag secret and the parts' configuration, in hak_free and the
// heap pool) with no other synchronisation with the initialiser: under
// TSan, an initialiser whose kReady store were not a release, or a waiter
// whose load of it were not an acquire, is a data race, and TSan makes the
// child exit with status 66. Every build checks that each thread's blocks
// are usable and freed without a heap error.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "api/hakmem.h"

namespace {

constexpr unsigned kThreads = 8;
constexpr unsigned kTrials = 20;

// The child's body: returns its exit status.
int race_first_allocation() {
  std::atomic<bool> go{false};
  std::atomic<unsigned> bad{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < kThreads; ++t) {
    threads.emplace_back([&go, &bad, t] {
      while (!go.load(std::memory_order_acquire)) {
      }
      void* blocks[16];
      for (unsigned i = 0; i < 16; ++i) {
        const size_t size = 16 + 48 * ((t + i) % 8);
        blocks[i] = hak_malloc(size);
        if (blocks[i] == nullptr || hak_usable_size(blocks[i]) < size) {
          bad.fetch_add(1);
          continue;
        }
        memset(blocks[i], int(t), size);
      }
      for (void* p : blocks) hak_free(p);
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& th : threads) th.join();
  return bad.load() == 0 ? 0 : 1;
}

TEST(InitRace, ThreadsRacingTheFirstAllocationAllSeeAnInitialisedProcess) {
  for (unsigned trial = 0; trial < kTrials; ++trial) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(race_first_allocation());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "trial " << trial << ": the child died of signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ASSERT_EQ(WEXITSTATUS(status), 0)
        << "trial " << trial << ": exit status 66 is a data race ThreadSanitizer reported, 1 a "
        << "thread whose blocks were missing or too small";
  }
}

}  // namespace
