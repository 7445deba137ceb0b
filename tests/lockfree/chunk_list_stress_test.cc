// Multithreaded stress test of lockfree::ChunkList (invariant I1).
//
// 8 threads append 2^20 nodes in total (repeated kStressRounds times, each
// round on a fresh list) while checking, every few appends,
// that current() is a published node (its plain fields, written before
// append, are intact -- TSan also checks the publication) that is not
// behind the thread's own last node, and that the next few nodes after it
// are well formed too. Afterwards the list is walked from first(): every node
// exactly once, positions 0..N-1 matching what append() returned, acyclic,
// count() exact, current() the tail.
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "lockfree/chunk_list.h"
#include "lockfree/memory_order.h"
#include "tests/lockfree/stress_util.h"
#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

using testing::run_threads;
using testing::stamp;

constexpr unsigned kThreads = 8;
constexpr uint64_t kPerThread = uint64_t{1} << 17;
constexpr uint64_t kTotal = kThreads * kPerThread;  // 1,048,576 appends
constexpr unsigned kObserveEvery = 8;
constexpr unsigned kObserveHops = 4;

template <class P>
struct Node : ChunkListHook<Node<P>, P> {
  uint64_t id = 0;
  uint64_t check = 0;              // stamp(id), written before append()
  uint64_t returned_position = 0;  // what append() returned (appender only)
};

// Walks `list` and checks I1 against the `total` nodes at `nodes`. Returns
// a description of every violation found (empty: the list is correct).
template <class P>
std::string check_list(const ChunkList<Node<P>, P>& list, const Node<P>* nodes, uint64_t total) {
  using List = ChunkList<Node<P>, P>;
  std::ostringstream err;
  std::vector<uint8_t> seen(total, 0);
  uint64_t i = 0;
  const Node<P>* last = nullptr;
  for (const Node<P>* n = list.first(); n != nullptr; n = List::next(n)) {
    if (i == total) {
      err << "more than " << total << " hops: a cycle or a foreign node\n";
      break;
    }
    const uint64_t index = static_cast<uint64_t>(n - nodes);
    if (n < nodes || index >= total) {
      err << "hop " << i << ": foreign node\n";
      break;
    }
    if (seen[index]++ != 0) err << "node " << index << " linked twice (hop " << i << ")\n";
    if (List::position(n) != i) err << "hop " << i << ": position " << List::position(n) << "\n";
    if (n->returned_position != i) {
      err << "hop " << i << ": append() returned " << n->returned_position << "\n";
    }
    if (n->check != stamp(n->id)) err << "hop " << i << ": corrupt payload\n";
    last = n;
    ++i;
  }
  if (i != total) err << "walked " << i << " nodes, appended " << total << "\n";
  for (uint64_t k = 0; k < total; ++k) {
    if (seen[k] == 0) {
      err << "node " << k << " not linked\n";
      break;
    }
  }
  if (list.count() != total) err << "count() " << list.count() << " != " << total << "\n";
  if (list.current() != last) err << "current() is not the tail\n";
  return err.str();
}

// One round: 8 threads append 2^20 fresh nodes to a fresh list.
template <class P>
void append_round() {
  using N = Node<P>;
  using List = ChunkList<N, P>;
  List list;
  std::vector<N> nodes(kTotal);
  std::vector<uint64_t> bad_observations(kThreads, 0);
  std::vector<uint64_t> observations(kThreads, 0);

  run_threads(kThreads, [&](unsigned t) {
    uint64_t bad = 0, seen = 0;
    for (uint64_t k = 0; k < kPerThread; ++k) {
      // Interleave the threads' nodes in memory so neighbours contend.
      const uint64_t id = k * kThreads + t;
      N* n = &nodes[id];
      n->id = id;
      n->check = stamp(id);
      const uint64_t pos = list.append(n);
      n->returned_position = pos;
      if (List::position(n) != pos || pos >= kTotal) ++bad;
      if (k % kObserveEvery != 0) continue;
      // What an allocating thread sees through the class head.
      const N* cur = list.current();
      ++seen;
      if (cur == nullptr || cur->check != stamp(cur->id) || List::position(cur) < pos) {
        ++bad;
        continue;
      }
      const N* m = cur;
      for (unsigned h = 0; h < kObserveHops && m != nullptr; ++h, m = List::next(m)) {
        if (m->check != stamp(m->id) || m->id >= kTotal) ++bad;
        const N* nx = List::next(m);
        if (nx != nullptr && List::position(nx) != List::position(m) + 1) ++bad;
      }
    }
    bad_observations[t] = bad;
    observations[t] = seen;
  });

  for (unsigned t = 0; t < kThreads; ++t) {
    EXPECT_EQ(bad_observations[t], 0u) << "thread " << t;
    EXPECT_EQ(observations[t], kPerThread / kObserveEvery);
  }
  EXPECT_EQ(check_list(list, nodes.data(), kTotal), "");
}

template <class P>
class ChunkListStress : public ::testing::Test {};

TYPED_TEST_SUITE(ChunkListStress, testing::Policies, testing::PolicyName);

TYPED_TEST(ChunkListStress, ConcurrentAppendsLinkEveryNodeExactlyOnce) {
  testing::repeat_rounds(append_round<TypeParam>);
}

// The checker itself must catch broken lists, or the stress test proves
// nothing.
TYPED_TEST(ChunkListStress, CheckerDetectsBrokenLists) {
  using N = Node<TypeParam>;
  using List = ChunkList<N, TypeParam>;
  constexpr uint64_t kN = 6;
  auto build = [](List& list, std::vector<N>& nodes) {
    for (uint64_t i = 0; i < kN; ++i) {
      nodes[i].id = i;
      nodes[i].check = stamp(i);
      nodes[i].returned_position = list.append(&nodes[i]);
    }
  };
  {
    List list;
    std::vector<N> nodes(kN);
    build(list, nodes);
    EXPECT_EQ(check_list(list, nodes.data(), kN), "");
  }
  {  // a cycle
    List list;
    std::vector<N> nodes(kN);
    build(list, nodes);
    nodes[kN - 1].chunk_next.store(&nodes[2], MemoryOrder::release);
    EXPECT_NE(check_list(list, nodes.data(), kN).find("cycle"), std::string::npos);
  }
  {  // a lost node: 2 is skipped
    List list;
    std::vector<N> nodes(kN);
    build(list, nodes);
    nodes[1].chunk_next.store(&nodes[3], MemoryOrder::release);
    EXPECT_NE(check_list(list, nodes.data(), kN).find("node 2 not linked"), std::string::npos);
  }
  {  // an unpublished payload
    List list;
    std::vector<N> nodes(kN);
    build(list, nodes);
    nodes[4].check = 0;
    EXPECT_NE(check_list(list, nodes.data(), kN).find("corrupt payload"), std::string::npos);
  }
  {  // one append too few
    List list;
    std::vector<N> nodes(kN);
    build(list, nodes);
    EXPECT_NE(check_list(list, nodes.data(), kN + 1).find("walked 6 nodes"), std::string::npos);
  }
}

}  // namespace
}  // namespace hakmem::lockfree
