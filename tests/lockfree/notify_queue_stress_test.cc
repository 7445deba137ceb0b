// Multithreaded stress tests of lockfree::NotifyQueue.
//
// NotifiesAreVisitedExactlyOnce: 8 producers notify() random nodes (and now
// and then claim one and unclaim it, as a remote freer that finds no owner
// does) while one consumer drains. Every notify that returned true must be
// visited exactly once -- per node, the producers' winning notifies equal
// the consumer's visits -- and a drain never visits a node twice (a node
// linked twice at once; under TSan also a data race on its link).
//
// DrainThenTakeLosesNoBlock: the allocator's pattern. 8 producers free
// blocks into the nodes' remote lists (RemoteFreeList) and, when a push
// found the list empty, notify the node (try_claim + push_claimed, as
// free_remote does); the consumer drains the queue and takes each visited
// node's list, and also takes lists without a notice (as the owner's refill
// of its current slab does). The run is cut into short phases; at the end of
// each, with the producers waiting, a final drain -- visiting only queued
// nodes -- must leave every remote list empty: nothing is stranded on a list
// whose node is not queued (a lost wakeup), and over the run every block is
// taken exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lockfree/notify_queue.h"
#include "lockfree/remote_free_list.h"
#include "tests/lockfree/stress_util.h"
#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

using testing::check_taken;
using testing::Rng;
using testing::run_threads;
using testing::stamp;

constexpr unsigned kProducers = 8;
constexpr unsigned kNodes = 64;

template <class P>
struct Block {
  typename P::template Var<Block*> next{nullptr};
  uint64_t id = 0;
  uint64_t check = 0;  // stamp(id), written by the freeing thread
};

template <class P>
struct alignas(64) Node {
  RemoteFreeList<Block<P>, P> remote;
  typename P::template Var<Node*> notify_next{nullptr};
  typename P::template Atomic<uint8_t> notify_queued{0};
  unsigned id = 0;
  // Consumer only: the drain that last visited the node.
  uint64_t last_drain = 0;
};

// Consumer-side tallies.
struct Visits {
  std::vector<uint64_t> per_node = std::vector<uint64_t>(kNodes, 0);
  uint64_t drains = 0;
  uint64_t twice_in_one_drain = 0;
  uint64_t foreign = 0;
};

// Drains `queue` (whose nodes are nodes[0, count)), checking each visited
// node and counting the visit, then calls take(node).
template <class P, class Take>
void drain(NotifyQueue<Node<P>, P>& queue, Node<P>* nodes, unsigned count, Visits& v,
           Take&& take) {
  const uint64_t drain_id = ++v.drains;
  queue.drain([&](Node<P>* n) {
    if (n < nodes || n >= nodes + count) {
      ++v.foreign;
      return;
    }
    if (n->last_drain == drain_id) ++v.twice_in_one_drain;
    n->last_drain = drain_id;
    ++v.per_node[n->id];
    take(n);
  });
}

template <class P>
void notify_round() {
  using N = Node<P>;
  constexpr uint64_t kOpsPerProducer = (uint64_t{1} << 20) / kProducers;

  NotifyQueue<N, P> queue;
  std::unique_ptr<N[]> nodes(new N[kNodes]);
  for (unsigned i = 0; i < kNodes; ++i) nodes[i].id = i;
  // Row p written by producer p only.
  std::vector<std::vector<uint64_t>> wins(kProducers, std::vector<uint64_t>(kNodes, 0));
  std::atomic<unsigned> producers_done{0};
  Visits v;

  run_threads(kProducers + 1, [&](unsigned t) {
    if (t == kProducers) {  // the consumer
      while (producers_done.load(std::memory_order_acquire) < kProducers) {
        if (!queue.empty()) drain<P>(queue, nodes.get(), kNodes, v, [](N*) {});
      }
      drain<P>(queue, nodes.get(), kNodes, v, [](N*) {});
      return;
    }
    Rng rng(t + 1);
    for (uint64_t op = 0; op < kOpsPerProducer; ++op) {
      const unsigned i = rng.below(kNodes);
      N* n = &nodes[i];
      if ((op & 7) == 7) {  // a notice with nowhere to go
        if (NotifyQueue<N, P>::try_claim(n)) NotifyQueue<N, P>::unclaim(n);
      } else if (queue.notify(n)) {
        ++wins[t][i];
      }
      // Let the consumer in: on two cores, eight producers would otherwise
      // finish before it runs.
      if ((op & 255) == 255) std::this_thread::yield();
    }
    producers_done.fetch_add(1, std::memory_order_release);
  });

  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(v.foreign, 0u);
  EXPECT_EQ(v.twice_in_one_drain, 0u);
  uint64_t total_wins = 0, mismatched = 0;
  for (unsigned i = 0; i < kNodes; ++i) {
    uint64_t w = 0;
    for (unsigned p = 0; p < kProducers; ++p) w += wins[p][i];
    total_wins += w;
    mismatched += w != v.per_node[i];
    EXPECT_EQ(nodes[i].notify_queued.load(MemoryOrder::relaxed), 0) << "node " << i;
  }
  EXPECT_EQ(mismatched, 0u) << "nodes whose winning notifies != visits";
  EXPECT_GT(total_wins, kNodes);  // nodes were queued again and again
  EXPECT_GT(v.drains, 1u);
}

// The allocator's pattern, in phases. In each phase every producer frees
// kPerPhase blocks into random nodes among kTakeNodes and notifies a node
// when its push found the list empty; the consumer drains the queue (taking
// each visited node's list) and takes random lists without a notice until
// the producers are done. Then, with everybody waiting at a barrier, the
// consumer drains what is queued once more: every list must now be empty.
// A block left on a list is stranded (its node not queued: a lost wakeup);
// it is counted and taken, so the next phase starts clean. Short phases on
// few nodes make the consumer's clear-then-take race the producers'
// push-then-notify often: a drain() that cleared the flag with a plain
// store stranded blocks in 2 to 7 of the 8192 phases of every run tried on
// x86.
template <class P>
void drain_then_take_round() {
  using B = Block<P>;
  using N = Node<P>;
  using Queue = NotifyQueue<N, P>;
  constexpr unsigned kTakeNodes = 4;
  constexpr unsigned kPerPhase = 16;
  constexpr uint64_t kTotal = uint64_t{1} << 20;
  constexpr uint64_t kPhases = kTotal / (kProducers * kPerPhase);

  Queue queue;
  std::unique_ptr<N[]> nodes(new N[kTakeNodes]);
  for (unsigned i = 0; i < kTakeNodes; ++i) nodes[i].id = i;
  std::unique_ptr<B[]> blocks(new B[kTotal]);
  std::vector<uint32_t> taken(kTotal, 0);  // consumer only
  std::vector<std::vector<uint64_t>> wins(kProducers, std::vector<uint64_t>(kNodes, 0));
  std::atomic<unsigned> producers_done{0};
  std::barrier phase_end(kProducers + 1);
  Visits v;
  uint64_t bad = 0, stranded = 0, direct_takes = 0;

  // Takes node n's list; returns how many blocks it held.
  auto take = [&](N* n) -> uint64_t {
    uint64_t count = 0;
    for (B* b = n->remote.take_all(); b != nullptr; b = b->next.load()) {
      const uint64_t index = static_cast<uint64_t>(b - blocks.get());
      if (index >= kTotal || count > kTotal) {
        ++bad;
        break;
      }
      if (b->check != stamp(b->id) || b->id != index) ++bad;
      ++taken[index];
      ++count;
    }
    return count;
  };
  auto visit = [&](N* n) { take(n); };

  run_threads(kProducers + 1, [&](unsigned t) {
    Rng rng(100 + t);
    for (uint64_t phase = 0; phase < kPhases; ++phase) {
      if (t == kProducers) {  // the consumer: the nodes' owner
        while (producers_done.load(std::memory_order_acquire) < kProducers) {
          if (!queue.empty()) drain<P>(queue, nodes.get(), kTakeNodes, v, visit);
          // A list taken without a notice (a current slab's refill): its
          // node may stay queued with an empty list.
          direct_takes += take(&nodes[rng.below(kTakeNodes)]) != 0;
        }
        phase_end.arrive_and_wait();  // the producers' frees are all done
        drain<P>(queue, nodes.get(), kTakeNodes, v, visit);  // only what is queued
        for (unsigned i = 0; i < kTakeNodes; ++i) {
          if (take(&nodes[i]) != 0) ++stranded;
        }
        producers_done.store(0, std::memory_order_relaxed);
        phase_end.arrive_and_wait();  // the next phase may start
        continue;
      }
      for (unsigned k = 0; k < kPerPhase; ++k) {
        const uint64_t index = (phase * kProducers + t) * kPerPhase + k;
        B* b = &blocks[index];
        b->id = index;
        b->check = stamp(index);
        N* n = &nodes[rng.below(kTakeNodes)];
        if (n->remote.push(b) && Queue::try_claim(n)) {
          queue.push_claimed(n);
          ++wins[t][n->id];
        }
      }
      producers_done.fetch_add(1, std::memory_order_release);
      phase_end.arrive_and_wait();
      phase_end.arrive_and_wait();
    }
  });

  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(v.foreign, 0u);
  EXPECT_EQ(v.twice_in_one_drain, 0u);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(stranded, 0u) << "phases that ended with blocks on a list whose node was not "
                             "queued (lost wakeup), out of "
                          << kPhases;
  uint64_t mismatched = 0;
  for (unsigned i = 0; i < kTakeNodes; ++i) {
    uint64_t w = 0;
    for (unsigned p = 0; p < kProducers; ++p) w += wins[p][i];
    mismatched += w != v.per_node[i];
  }
  EXPECT_EQ(mismatched, 0u) << "nodes whose winning notifies != visits";
  EXPECT_EQ(check_taken(taken, "blocks"), "");
  EXPECT_GT(direct_takes, 0u);
}

template <class P>
class NotifyQueueStress : public ::testing::Test {};

TYPED_TEST_SUITE(NotifyQueueStress, testing::Policies, testing::PolicyName);

// 8 producers x 2^17 notify/claim operations on 64 nodes, one consumer
// (kStressRounds times, fresh queue and nodes each round).
TYPED_TEST(NotifyQueueStress, NotifiesAreVisitedExactlyOnce) {
  testing::repeat_rounds(notify_round<TypeParam>);
}

// 8 producers free 2^20 blocks into 4 nodes, in phases of 16 blocks each,
// and notify; one consumer drains and takes.
TYPED_TEST(NotifyQueueStress, DrainThenTakeLosesNoBlock) {
  testing::repeat_rounds(drain_then_take_round<TypeParam>);
}

TEST(NotifyQueueChecker, DetectsLostAndDuplicatedBlocks) {
  testing::expect_check_taken_detects("blocks");
}

}  // namespace
}  // namespace hakmem::lockfree
