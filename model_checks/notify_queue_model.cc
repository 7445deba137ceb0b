// Relacy model of remote-free notices on the shipped lockfree::NotifyQueue,
// combined with the shipped lockfree::RemoteFreeList the notices are about.
//
// A model of the two primitives through their own API; the allocator's use
// of them (BasicRemoteFree's post and notify_owner, with the slab's owner
// field) is remote_free_protocol_model's subject, which calls the shipped
// templates. Here nodes have a remote list of blocks and the notify_next /
// notify_queued members NotifyQueue links them with. Three producer threads
// push blocks onto the nodes' lists and, if a push found the list empty,
// try_claim() the node and push_claimed() it onto the consumer's queue (one
// producer uses the one-call notify() instead). The
// consumer (the nodes' owner) repeatedly drain()s the queue and, for each
// node visited, takes the node's whole remote list. It also takes node 0's
// list without a notice, as the owner's refill of its current slab does, so
// a node can be queued while its list is empty.
//
// Two scenarios: 3 producers freeing 6 blocks into 2 nodes, explored with
// the random scheduler, and 2 producers freeing 3 blocks into 2 nodes,
// explored exhaustively within a context bound (the larger one does not
// finish in reasonable time under the context-bound scheduler).
//
// Checked:
//  - a node is never linked twice at once: a producer writes the node's
//    plain link (an rl::var) when it pushes it, the consumer reads it when it
//    drains it, so Relacy reports a data race on notify_next if a node can be
//    relinked before the consumer is done with it; each drain also visits a
//    node at most once;
//  - every notify that won the flag is visited exactly once;
//  - no lost wakeup: while a block sits in a node's remote list the node is
//    queued or the consumer's visit in progress will take the block. After
//    every thread finished, one more drain (visiting only queued nodes, like
//    the consumer) must take every block that is left; then every block has
//    been taken exactly once, every remote list and the queue are empty and
//    every flag is clear;
//  - blocks are published: each block's payload (an rl::var written before
//    the free) is read and checked by the consumer.
//
// This model found a lost wakeup in the first NotifyQueue, whose drain()
// cleared the flag with a release store: see lockfree/notify_queue.h and
// model_checks/README.md.
//
// Negative controls: the same model over
//  - NotifyQueueOrders::claim = relaxed (a producer relinks a node without
//    acquiring the consumer's read of the link: data race on notify_next);
//  - NotifyQueueOrders::clear = relaxed (the consumer's clear does not
//    release its read of the link: data race on notify_next);
//  - NotifyQueueOrders::clear = release, i.e. without the acquire half (a
//    producer that found the flag still set can have pushed a block the
//    consumer's visit does not see: lost wakeup, the final check fails);
//  - a policy whose flag exchange is a load then a store (two producers both
//    "win" the flag and link the node twice: data race on notify_next, a
//    node visited twice, or a lost node).
#include <cstdint>

#include "lockfree/memory_order.h"
#include "lockfree/notify_queue.h"
#include "lockfree/remote_free_list.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::MemoryOrder;
using lockfree::NotifyQueue;
using lockfree::NotifyQueueOrders;
using lockfree::RelacyAtomics;
using lockfree::RemoteFreeList;
using lockfree::SplitFlagExchangeAtomics;

// Who frees which block into which node, in program order per producer.
struct Free {
  unsigned producer;
  unsigned node;
};

// The scenario explored with the random scheduler: three producers, two
// nodes, six blocks; the consumer takes node 0's list directly and drains
// the queue three times.
struct ThreeProducers {
  static constexpr unsigned kProducers = 3;
  static constexpr unsigned kNodes = 2;
  static constexpr unsigned kConsumerRounds = 3;
  static constexpr unsigned kNotifyCallProducer = 2;  // uses notify()
  static constexpr Free kFrees[] = {
      {0, 0}, {0, 1},  // producer 0: a block into each node
      {1, 0}, {1, 0},  // producer 1: two blocks into node 0
      {2, 1}, {2, 0},  // producer 2: one into each node
  };
};

// A smaller one for the context-bound scheduler's exhaustive search.
struct TwoProducers {
  static constexpr unsigned kProducers = 2;
  static constexpr unsigned kNodes = 2;
  static constexpr unsigned kConsumerRounds = 2;
  static constexpr unsigned kNotifyCallProducer = 1;
  static constexpr Free kFrees[] = {
      {0, 0}, {0, 1},
      {1, 0},
  };
};

constexpr uint32_t poison_of(unsigned id) { return 0xdead0000u + id; }

template <class P>
struct Block {
  typename P::template Var<Block*> next;
  typename P::template Var<uint32_t> payload;
  unsigned id = 0;  // identity for the checker; set before the threads start
};

template <class P>
struct Node {
  RemoteFreeList<Block<P>, P> remote;
  typename P::template Var<Node*> notify_next{nullptr};
  typename P::template Atomic<uint8_t> notify_queued{0};
  unsigned id = 0;
};

struct RelaxedClaim {
  static constexpr MemoryOrder claim = MemoryOrder::relaxed;
  static constexpr MemoryOrder clear = NotifyQueueOrders::clear;
  static constexpr MemoryOrder unclaim = NotifyQueueOrders::unclaim;
};

struct RelaxedClear {
  static constexpr MemoryOrder claim = NotifyQueueOrders::claim;
  static constexpr MemoryOrder clear = MemoryOrder::relaxed;
  static constexpr MemoryOrder unclaim = NotifyQueueOrders::unclaim;
};

struct ReleaseOnlyClear {
  static constexpr MemoryOrder claim = NotifyQueueOrders::claim;
  static constexpr MemoryOrder clear = MemoryOrder::release;
  static constexpr MemoryOrder unclaim = NotifyQueueOrders::unclaim;
};

template <class P, class Orders, class S = ThreeProducers>
struct NotifyModel : rl::test_suite<NotifyModel<P, Orders, S>, S::kProducers + 1> {
  static constexpr unsigned kProducers = S::kProducers;
  static constexpr unsigned kConsumer = kProducers;  // the last thread
  static constexpr unsigned kNodes = S::kNodes;
  static constexpr unsigned kBlocks = sizeof(S::kFrees) / sizeof(S::kFrees[0]);
  static constexpr const Free* kFrees = S::kFrees;
  using B = Block<P>;
  using N = Node<P>;
  using Queue = NotifyQueue<N, P, Orders>;

  Queue queue;
  N nodes[kNodes];
  B blocks[kBlocks];
  // Checker state. Each array entry is written by one thread only (the
  // producer that owns the row, or the consumer) and read in after().
  unsigned notified[kProducers][kNodes] = {};  // notifies that won the flag
  unsigned visits[kNodes] = {};
  unsigned taken[kBlocks] = {};

  NotifyModel() {
    for (unsigned n = 0; n < kNodes; ++n) nodes[n].id = n;
    for (unsigned id = 0; id < kBlocks; ++id) blocks[id].id = id;
  }

  // A push, and a notice if the list was empty.
  void free_block(unsigned producer, unsigned id) {
    B* b = &blocks[id];
    N* node = &nodes[kFrees[id].node];
    b->payload.store(poison_of(id));
    if (!node->remote.push(b)) return;
    bool queued = false;
    if (producer == S::kNotifyCallProducer) {
      queued = queue.notify(node);
    } else if (Queue::try_claim(node)) {
      queue.push_claimed(node);
      queued = true;
    }
    if (queued) ++notified[producer][node->id];
  }

  // The owner's visit: take everything freed into the node.
  void visit(N* node) {
    RL_ASSERT(node >= &nodes[0] && node < &nodes[kNodes]);
    ++visits[node->id];
    take(node);
  }

  // The owner also takes a node's list without a notice, as its refill of
  // the current slab does: a node can then be queued with an empty list.
  void take(N* node) {
    unsigned hops = 0;
    for (B* b = node->remote.take_all(); b != nullptr; b = b->next.load()) {
      RL_ASSERT(hops < kBlocks);  // acyclic
      if (hops++ >= kBlocks) return;
      RL_ASSERT(b->id < kBlocks && kFrees[b->id].node == node->id);
      RL_ASSERT(b->payload.load() == poison_of(b->id));
      ++taken[b->id];
    }
  }

  void drain() {
    unsigned seen[kNodes] = {};
    unsigned hops = 0;
    queue.drain([&](N* node) {
      RL_ASSERT(++hops <= kNodes);  // no node twice, no cycle
      RL_ASSERT(++seen[node->id] == 1);
      visit(node);
    });
  }

  void thread(unsigned t) {
    if (t == kConsumer) {
      for (unsigned round = 0; round < S::kConsumerRounds; ++round) {
        take(&nodes[0]);
        if (!queue.empty()) drain();
        P::pause();
      }
      return;
    }
    for (unsigned id = 0; id < kBlocks; ++id) {
      if (kFrees[id].producer == t) free_block(t, id);
    }
  }

  void after() {
    drain();  // only what is queued: a block the queue forgot stays behind
    RL_ASSERT(queue.empty());
    for (unsigned n = 0; n < kNodes; ++n) {
      RL_ASSERT(nodes[n].remote.empty());  // no lost wakeup
      RL_ASSERT(nodes[n].notify_queued.load(MemoryOrder::relaxed) == 0);
      unsigned wins = 0;
      for (unsigned p = 0; p < kProducers; ++p) wins += notified[p][n];
      RL_ASSERT(wins == visits[n]);  // every winning notify visited exactly once
    }
    for (unsigned id = 0; id < kBlocks; ++id) RL_ASSERT(taken[id] == 1);
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  return ModelRun("notify_queue_model", 1000000)
      .clean<NotifyModel<RelacyAtomics, NotifyQueueOrders, ThreeProducers>>(
          "notify queue: 3 producers free+notify 6 blocks into 2 nodes vs owner drain")
      .bounded<NotifyModel<RelacyAtomics, NotifyQueueOrders, TwoProducers>>(
          "notify queue: 2 producers free+notify 3 blocks into 2 nodes vs owner drain", 2)
      .control<NotifyModel<RelacyAtomics, RelaxedClaim>>(
          "notify queue NEGATIVE CONTROL: NotifyQueueOrders::claim = relaxed",
          {rl::test_result_data_race})
      .control<NotifyModel<RelacyAtomics, RelaxedClear>>(
          "notify queue NEGATIVE CONTROL: NotifyQueueOrders::clear = relaxed",
          {rl::test_result_data_race})
      .control<NotifyModel<RelacyAtomics, ReleaseOnlyClear>>(
          "notify queue NEGATIVE CONTROL: NotifyQueueOrders::clear = release (lost wakeup)",
          {rl::test_result_user_assert_failed})
      .control<NotifyModel<SplitFlagExchangeAtomics, NotifyQueueOrders>>(
          "notify queue NEGATIVE CONTROL: flag exchange split into load + store",
          {rl::test_result_data_race, rl::test_result_user_assert_failed})
      .finish();
}
