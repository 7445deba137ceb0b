// Multithreaded stress tests of lockfree::RemoteFreeList (invariant I3).
//
// Producers push nodes singly and as pre-linked chains; owners take_all()
// concurrently. Each node is pushed exactly once with a payload written
// before the push (TSan checks its publication); the owner checks the
// payload and counts the node. At the end every node must have been taken
// exactly once, and the pushes that found their list empty must equal the
// take_all() calls that returned something (each empty -> non-empty
// transition is ended by exactly one take).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lockfree/remote_free_list.h"
#include "tests/lockfree/stress_util.h"
#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

using testing::check_taken;
using testing::Rng;
using testing::run_threads;
using testing::stamp;

constexpr unsigned kMaxChain = 8;

template <class P>
struct Block {
  typename P::template Var<Block*> next{nullptr};
  uint64_t id = 0;
  uint64_t check = 0;  // stamp(id), written by the freeing thread
};

struct TakeStats {
  uint64_t non_empty_takes = 0;
  uint64_t taken = 0;
  uint64_t bad = 0;  // corrupt payloads, foreign nodes, over-long chains
};

// Owner side: takes everything from `list`, checks and counts each node.
template <class P>
void drain(RemoteFreeList<Block<P>, P>& list, Block<P>* base, uint64_t total,
           std::vector<uint32_t>& taken, TakeStats& stats) {
  Block<P>* b = list.take_all();
  if (b == nullptr) return;
  ++stats.non_empty_takes;
  for (uint64_t hops = 0; b != nullptr; b = b->next.load(), ++hops) {
    const uint64_t index = static_cast<uint64_t>(b - base);
    if (hops > total || index >= total) {
      ++stats.bad;
      return;
    }
    if (b->check != stamp(b->id) || b->id != index) ++stats.bad;
    ++taken[index];
    ++stats.taken;
  }
}

// Producer side: frees nodes [begin, end) onto `pick(rng)`, as single
// pushes and as chains of 2..kMaxChain. Returns how many pushes found
// their list empty, per list.
template <class P, class Pick>
void produce(Block<P>* base, uint64_t begin, uint64_t end, Rng& rng, Pick pick,
             std::vector<uint64_t>& was_empty) {
  uint64_t i = begin;
  while (i < end) {
    const uint64_t len = std::min<uint64_t>(1 + rng.below(kMaxChain), end - i);
    for (uint64_t k = i; k < i + len; ++k) {
      base[k].id = k;
      base[k].check = stamp(k);
      if (k + 1 < i + len) base[k].next.store(&base[k + 1]);
    }
    const unsigned l = pick(rng);
    const bool empty = len == 1 ? pick.list(l).push(&base[i])
                                : pick.list(l).push_chain(&base[i], &base[i + len - 1]);
    was_empty[l] += empty;
    i += len;
  }
}

template <class P>
void one_owner_round() {
  using B = Block<P>;
  using List = RemoteFreeList<B, P>;
  constexpr unsigned kProducers = 8;
  constexpr uint64_t kTotal = uint64_t{1} << 20;
  constexpr uint64_t kPerProducer = kTotal / kProducers;

  List list;
  std::unique_ptr<B[]> blocks(new B[kTotal]);
  std::vector<uint32_t> taken(kTotal, 0);
  std::vector<std::vector<uint64_t>> was_empty(kProducers, std::vector<uint64_t>(1, 0));
  std::atomic<unsigned> producers_done{0};
  TakeStats stats;

  struct One {
    List* l;
    unsigned operator()(Rng&) const { return 0; }
    List& list(unsigned) const { return *l; }
  };

  // Producers push half their nodes, wait until the owner has taken some,
  // then push the rest: the owner is guaranteed to race the producers
  // however the threads are scheduled.
  std::atomic<bool> owner_took{false};
  run_threads(kProducers + 1, [&](unsigned t) {
    if (t == kProducers) {  // the owner
      while (producers_done.load(std::memory_order_acquire) < kProducers) {
        drain(list, blocks.get(), kTotal, taken, stats);
        if (stats.non_empty_takes > 0) owner_took.store(true, std::memory_order_release);
      }
      drain(list, blocks.get(), kTotal, taken, stats);
      return;
    }
    Rng rng(t);
    const uint64_t begin = t * kPerProducer, mid = begin + kPerProducer / 2;
    produce<P>(blocks.get(), begin, mid, rng, One{&list}, was_empty[t]);
    while (!owner_took.load(std::memory_order_acquire)) std::this_thread::yield();
    produce<P>(blocks.get(), mid, begin + kPerProducer, rng, One{&list}, was_empty[t]);
    producers_done.fetch_add(1, std::memory_order_release);
  });

  EXPECT_TRUE(list.empty());
  EXPECT_EQ(stats.bad, 0u);
  EXPECT_EQ(stats.taken, kTotal);
  EXPECT_EQ(check_taken(taken, "nodes"), "");
  uint64_t empties = 0;
  for (const auto& w : was_empty) empties += w[0];
  EXPECT_EQ(empties, stats.non_empty_takes);
  EXPECT_GT(stats.non_empty_takes, 1u);  // the owner really raced the producers
}

template <class P>
void all_owners_round() {
  using B = Block<P>;
  using List = RemoteFreeList<B, P>;
  constexpr unsigned kThreads = 8;
  constexpr uint64_t kTotal = uint64_t{1} << 20;
  constexpr uint64_t kPerThread = kTotal / kThreads;

  std::vector<List> lists(kThreads);
  std::unique_ptr<B[]> blocks(new B[kTotal]);
  // Entry k is written by the owner of the list node k was freed to.
  std::vector<uint32_t> taken(kTotal, 0);
  std::vector<std::vector<uint64_t>> was_empty(kThreads, std::vector<uint64_t>(kThreads, 0));
  std::vector<TakeStats> stats(kThreads);
  std::atomic<unsigned> done{0};

  struct Any {
    std::vector<List>* ls;
    unsigned operator()(Rng& rng) const { return rng.below(static_cast<unsigned>(ls->size())); }
    List& list(unsigned i) const { return (*ls)[i]; }
  };

  run_threads(kThreads, [&](unsigned t) {
    Rng rng(1000 + t);
    const uint64_t begin = t * kPerThread, end = begin + kPerThread;
    constexpr uint64_t kSlice = 4096;
    for (uint64_t i = begin; i < end; i += kSlice) {
      produce<P>(blocks.get(), i, std::min(end, i + kSlice), rng, Any{&lists},
                         was_empty[t]);
      drain(lists[t], blocks.get(), kTotal, taken, stats[t]);
    }
    done.fetch_add(1, std::memory_order_acq_rel);
    while (done.load(std::memory_order_acquire) < kThreads) {
      drain(lists[t], blocks.get(), kTotal, taken, stats[t]);
    }
    drain(lists[t], blocks.get(), kTotal, taken, stats[t]);
  });

  uint64_t total_taken = 0;
  for (unsigned l = 0; l < kThreads; ++l) {
    EXPECT_TRUE(lists[l].empty()) << "list " << l;
    EXPECT_EQ(stats[l].bad, 0u) << "owner " << l;
    total_taken += stats[l].taken;
    uint64_t empties = 0;
    for (unsigned t = 0; t < kThreads; ++t) empties += was_empty[t][l];
    EXPECT_EQ(empties, stats[l].non_empty_takes) << "list " << l;
  }
  EXPECT_EQ(total_taken, kTotal);
  EXPECT_EQ(check_taken(taken, "nodes"), "");
}

template <class P>
class RemoteFreeListStress : public ::testing::Test {};

TYPED_TEST_SUITE(RemoteFreeListStress, testing::Policies, testing::PolicyName);

// 8 producers free 2^20 nodes onto one list while its owner drains it
// (kStressRounds times, fresh nodes and list each round).
TYPED_TEST(RemoteFreeListStress, ManyProducersOneOwnerNothingLostOrDuplicated) {
  testing::repeat_rounds(one_owner_round<TypeParam>);
}

// 8 threads each own a list (a slab) and free nodes onto everybody's lists,
// draining their own as they go -- the allocator's cross-thread free pattern.
TYPED_TEST(RemoteFreeListStress, EveryThreadOwnsAListAndFreesToAll) {
  testing::repeat_rounds(all_owners_round<TypeParam>);
}

TEST(RemoteFreeListChecker, DetectsLostAndDuplicatedNodes) {
  testing::expect_check_taken_detects("nodes");
}

}  // namespace
}  // namespace hakmem::lockfree
