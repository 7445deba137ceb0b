// Relacy model of chunk-list expansion (invariant I1): three threads append
// chunks concurrently to the shipped lockfree::ChunkList.
//
// Checked in every explored execution:
//  - each appending thread, right after its append and again later, reads
//    current(): it is never null, never behind the thread's own chunk, and is
//    reachable from first(); the walk from first() is acyclic, positions are
//    0,1,2,... and it contains the thread's own chunk;
//  - every chunk a thread reaches through first()/current()/next() has the
//    header its appender wrote (plain rl::var fields) -- Relacy reports a data
//    race if the write is not published to that reader;
//  - at every scheduling point (Relacy invariant): the latest `current` is
//    null or a linked chunk, the list is acyclic, count() <= linked chunks;
//  - at the end: every chunk linked exactly once, count() exact, current() is
//    the tail.
//
// Negative controls: the same model over
//  - ChunkList with ChunkListOrders::publish = relaxed (reported as a data
//    race on the chunk header);
//  - a policy whose compare-exchange is a load then a store (two appenders
//    link behind the same tail; a chunk is lost and an assertion fails).
#include <cstdint>

#include "lockfree/chunk_list.h"
#include "lockfree/memory_order.h"
#include "model_checks/broken_orders.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::ChunkList;
using lockfree::ChunkListHook;
using lockfree::ChunkListOrders;
using lockfree::RelacyAtomics;
using lockfree::SplitCasAtomics;

constexpr unsigned kThreads = 3;
constexpr unsigned kChunksPerThread = 2;
constexpr unsigned kChunks = kThreads * kChunksPerThread;

// Header values a chunk's appender writes before linking it.
constexpr uint32_t size_class_of(unsigned id) { return 100 + id; }
constexpr uint32_t block_size_of(unsigned id) { return 16u << id; }

template <class P>
struct Chunk : ChunkListHook<Chunk<P>, P> {
  // Plain header fields, written by the appending thread before append().
  typename P::template Var<uint32_t> size_class;
  typename P::template Var<uint32_t> block_size;
  // Identity for the checker; set before the threads start.
  unsigned id = 0;
};

template <class P, class Orders>
struct ExpansionModel : rl::test_suite<ExpansionModel<P, Orders>, kThreads> {
  using Node = Chunk<P>;
  using List = ChunkList<Node, P, Orders>;

  List list;
  Node chunks[kChunks];

  ExpansionModel() {
    for (unsigned i = 0; i < kChunks; ++i) chunks[i].id = i;
  }

  // A reader's view of a chunk reached through the list: the header must be
  // the one its appender wrote (race-checked by Relacy).
  static void check_header(const Node* n) {
    RL_ASSERT(n->id < kChunks);
    RL_ASSERT(n->size_class.load() == size_class_of(n->id));
    RL_ASSERT(n->block_size.load() == block_size_of(n->id));
  }

  // Walks the list from first(): acyclic, positions 0..k-1, every header
  // intact. Returns whether `a` and `b` were met.
  void walk_and_find(const Node* a, const Node* b, bool& found_a, bool& found_b) {
    found_a = found_b = false;
    uint64_t i = 0;
    for (const Node* n = list.first(); n != nullptr; n = List::next(n)) {
      RL_ASSERT(i < kChunks);  // more hops than chunks: a cycle or a duplicate
      if (i >= kChunks) return;
      RL_ASSERT(List::position(n) == i);
      check_header(n);
      found_a = found_a || n == a;
      found_b = found_b || n == b;
      ++i;
    }
  }

  void observe(const Node* mine) {
    const Node* cur = list.current();
    RL_ASSERT(cur != nullptr);
    if (cur == nullptr) return;
    check_header(cur);
    RL_ASSERT(List::position(cur) >= List::position(mine));
    bool found_cur, found_mine;
    walk_and_find(cur, mine, found_cur, found_mine);
    RL_ASSERT(found_cur);
    RL_ASSERT(found_mine);
  }

  void thread(unsigned t) {
    for (unsigned k = 0; k < kChunksPerThread; ++k) {
      Node* n = &chunks[t * kChunksPerThread + k];
      // "Map" and initialise the chunk, then publish it.
      n->size_class.store(size_class_of(n->id));
      n->block_size.store(block_size_of(n->id));
      const uint64_t pos = list.append(n);
      RL_ASSERT(pos < kChunks);
      RL_ASSERT(List::position(n) == pos);
      observe(n);
    }
    // Later, as an allocating thread would: current() is still a linked chunk.
    observe(&chunks[t * kChunksPerThread + kChunksPerThread - 1]);
  }

  // At every scheduling point, on the latest values.
  void invariant() {
    const Node* cur = list.current();
    unsigned linked = 0;
    bool cur_linked = cur == nullptr;
    for (const Node* n = list.first(); n != nullptr && linked <= kChunks; n = List::next(n)) {
      ++linked;
      cur_linked = cur_linked || n == cur;
    }
    RL_ASSERT(linked <= kChunks);
    RL_ASSERT(cur_linked);
    RL_ASSERT(list.count() <= linked);
  }

  void after() {
    unsigned seen[kChunks] = {};
    uint64_t i = 0;
    const Node* last = nullptr;
    for (const Node* n = list.first(); n != nullptr && i <= kChunks; n = List::next(n)) {
      RL_ASSERT(n->id < kChunks);
      if (n->id >= kChunks) return;
      ++seen[n->id];
      RL_ASSERT(List::position(n) == i);
      check_header(n);
      last = n;
      ++i;
    }
    RL_ASSERT(i == kChunks);
    for (unsigned id = 0; id < kChunks; ++id) RL_ASSERT(seen[id] == 1);
    RL_ASSERT(list.count() == kChunks);
    RL_ASSERT(list.current() == last);
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::ChunkListRelaxedPublish;
  return ModelRun("expansion_model", 200000)
      .clean<ExpansionModel<RelacyAtomics, ChunkListOrders>>(
          "expansion: 3 threads x 2 appends on ChunkList", 1)
      .control<ExpansionModel<RelacyAtomics, ChunkListRelaxedPublish>>(
          "expansion NEGATIVE CONTROL: ChunkListOrders::publish = relaxed",
          {rl::test_result_data_race})
      .control<ExpansionModel<SplitCasAtomics, ChunkListOrders>>(
          "expansion NEGATIVE CONTROL: compare-exchange split into load + store",
          {rl::test_result_user_assert_failed, rl::test_result_user_invariant_failed})
      .finish();
}
