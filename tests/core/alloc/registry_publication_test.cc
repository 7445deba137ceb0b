// Registry publication (docs/design.md 5.6): a thread that classifies a
// pointer it got with no synchronisation of its own still sees the chunk or
// large header the registry vouches for, because the registering thread's
// release store of the granule's kind pairs with classify's acquire load.
//
// Each trial is a fresh child process, so every size class is new: thread A
// allocates a small block (its class's first chunk is mapped, initialised
// and registered there and then) and a large one, and hands both pointers
// to thread B through relaxed atomics, which order nothing. B asks
// hak_usable_size of each and hak_owns of the large one, which read only
// hakmem's metadata (the slab descriptor, the large header), never the
// block (hak_owns of a small block reads its free tag, in the block). Under TSan, a
// registry store or load weaker than release/acquire leaves B's reads of
// the header unordered after A's writes: a data race, and the child exits
// with status 66. Every build checks the answers.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "api/hakmem.h"

namespace {

constexpr unsigned kTrials = 20;
constexpr size_t kSmall = 3000;       // a small class: its first chunk is new in the child
constexpr size_t kLarge = 3u << 20;   // above every small and medium class

int classify_unsynchronised() {
  std::atomic<void*> small{nullptr}, large{nullptr};
  size_t small_usable = 0, large_usable = 0;
  int large_owned = 0;
  std::thread reader([&] {
    void* s;
    void* l;
    while ((s = small.load(std::memory_order_relaxed)) == nullptr) {
    }
    while ((l = large.load(std::memory_order_relaxed)) == nullptr) {
    }
    small_usable = hak_usable_size(s);
    large_usable = hak_usable_size(l);
    large_owned = hak_owns(l);
  });
  std::thread writer([&] {
    small.store(hak_malloc(kSmall), std::memory_order_relaxed);
    large.store(hak_malloc(kLarge), std::memory_order_relaxed);
  });
  writer.join();
  reader.join();
  const bool ok = small_usable >= kSmall && large_usable >= kLarge && large_owned == 1;
  hak_free(small.load());
  hak_free(large.load());
  return ok ? 0 : 1;
}

TEST(RegistryPublication, AnUnsynchronisedReaderSeesTheHeadersTheRegistryNames) {
  for (unsigned trial = 0; trial < kTrials; ++trial) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) _exit(classify_unsynchronised());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "trial " << trial << ": the child died of signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ASSERT_EQ(WEXITSTATUS(status), 0)
        << "trial " << trial << ": exit status 66 is a data race ThreadSanitizer reported, 1 a "
        << "wrong usable size or ownership answer";
  }
}

}  // namespace
