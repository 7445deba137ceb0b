// Relacy model of remote frees (invariant I3) on the shipped
// lockfree::RemoteFreeList: two producer threads push blocks (singly and as a
// pre-linked chain with push_chain) while the owner thread repeatedly takes
// everything with take_all().
//
// Before pushing, a producer writes the block's plain payload (its last write
// to the freed block) and, for a chain, the chain's internal links; the owner
// walks every taken chain through next and reads each payload. All of
// these are rl::var accesses, so Relacy reports a data race if a push does
// not publish them to the owner. Every block must be taken exactly once: the
// owner counts what it takes, and after all threads finish the remainder is
// drained and the counts checked (nothing lost, nothing duplicated, every
// chain null-terminated and acyclic).
//
// Negative controls: the same model over
//  - RemoteFreeListOrders::push = relaxed (data race on the block);
//  - RemoteFreeListOrders::take = relaxed (data race on the block);
//  - a policy whose compare-exchange is a load then a store (two pushes can
//    install the same head; a block is lost and the final count fails).
#include <cstdint>

#include "lockfree/memory_order.h"
#include "lockfree/remote_free_list.h"
#include "model_checks/broken_orders.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::RelacyAtomics;
using lockfree::RemoteFreeList;
using lockfree::RemoteFreeListOrders;
using lockfree::SplitCasAtomics;

constexpr unsigned kProducers = 2;
constexpr unsigned kThreads = kProducers + 1;  // the last thread owns the list
constexpr unsigned kOwner = kThreads - 1;
constexpr unsigned kBlocks = 5;
constexpr unsigned kOwnerRounds = 3;

constexpr uint32_t poison_of(unsigned id) { return 0xdead0000u + id; }

template <class P>
struct Block {
  typename P::template Var<Block*> next;
  typename P::template Var<uint32_t> payload;
  unsigned id = 0;  // identity for the checker; set before the threads start
};

template <class P, class Orders>
struct RemoteFreeModel : rl::test_suite<RemoteFreeModel<P, Orders>, kThreads> {
  using B = Block<P>;
  using List = RemoteFreeList<B, P, Orders>;

  List list;
  B blocks[kBlocks];
  // Times each block was taken (checker state: owner thread, then after()).
  unsigned taken[kBlocks] = {};

  RemoteFreeModel() {
    for (unsigned i = 0; i < kBlocks; ++i) blocks[i].id = i;
  }

  void free_one(unsigned id) {
    B* b = &blocks[id];
    b->payload.store(poison_of(id));
    list.push(b);
  }

  // Frees blocks first..last (consecutive ids) as one pre-linked chain.
  void free_chain(unsigned first, unsigned last) {
    for (unsigned id = first; id <= last; ++id) {
      blocks[id].payload.store(poison_of(id));
      if (id < last) blocks[id].next.store(&blocks[id + 1]);
    }
    list.push_chain(&blocks[first], &blocks[last]);
  }

  void consume(B* chain) {
    unsigned hops = 0;
    for (B* b = chain; b != nullptr; b = b->next.load()) {
      RL_ASSERT(hops < kBlocks);  // acyclic, no block twice in one chain
      if (hops++ >= kBlocks) return;
      RL_ASSERT(b->id < kBlocks);
      RL_ASSERT(b->payload.load() == poison_of(b->id));
      ++taken[b->id];
    }
  }

  void thread(unsigned t) {
    if (t == 0) {
      free_one(0);
      free_chain(1, 2);
    } else if (t == 1) {
      free_one(3);
      free_one(4);
    } else {
      RL_ASSERT(t == kOwner);
      for (unsigned round = 0; round < kOwnerRounds; ++round) {
        consume(list.take_all());
        P::pause();
      }
    }
  }

  void after() {
    consume(list.take_all());
    RL_ASSERT(list.empty());
    for (unsigned id = 0; id < kBlocks; ++id) RL_ASSERT(taken[id] == 1);
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::RemoteFreeListRelaxedPush;
  using hakmem::lockfree::RemoteFreeListRelaxedTake;
  return ModelRun("remote_free_model", 1000000)
      .clean<RemoteFreeModel<RelacyAtomics, RemoteFreeListOrders>>(
          "remote free: 2 producers (push, push_chain) vs owner take_all", 3)
      .control<RemoteFreeModel<RelacyAtomics, RemoteFreeListRelaxedPush>>(
          "remote free NEGATIVE CONTROL: RemoteFreeListOrders::push = relaxed",
          {rl::test_result_data_race})
      .control<RemoteFreeModel<RelacyAtomics, RemoteFreeListRelaxedTake>>(
          "remote free NEGATIVE CONTROL: RemoteFreeListOrders::take = relaxed",
          {rl::test_result_data_race})
      .control<RemoteFreeModel<SplitCasAtomics, RemoteFreeListOrders>>(
          "remote free NEGATIVE CONTROL: push CAS split into load + store",
          {rl::test_result_user_assert_failed})
      .finish();
}
