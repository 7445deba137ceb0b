// Single-threaded semantics of lockfree::ChunkList.
#include "lockfree/chunk_list.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "lockfree/memory_order.h"
#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

template <class P>
struct Node : ChunkListHook<Node<P>, P> {
  int payload = 0;
};

template <class P>
class ChunkListTest : public ::testing::Test {
 protected:
  using N = Node<P>;
  using List = ChunkList<N, P>;

  // Links `node` behind `tail` by hand, as an append that has linked its
  // node but not yet advanced `current` (or counted it) would leave it.
  static void link_without_advancing(N* tail, N* node) {
    node->chunk_position.store(List::position(tail) + 1);
    tail->chunk_next.store(node, MemoryOrder::release);
  }

  List list;
};

TYPED_TEST_SUITE(ChunkListTest, testing::Policies, testing::PolicyName);

TYPED_TEST(ChunkListTest, StartsEmpty) {
  EXPECT_EQ(this->list.first(), nullptr);
  EXPECT_EQ(this->list.current(), nullptr);
  EXPECT_EQ(this->list.count(), 0u);
}

TYPED_TEST(ChunkListTest, FirstAppendSetsFirstAndCurrent) {
  typename TestFixture::N a;
  EXPECT_EQ(this->list.append(&a), 0u);
  EXPECT_EQ(this->list.first(), &a);
  EXPECT_EQ(this->list.current(), &a);
  EXPECT_EQ(this->list.count(), 1u);
  EXPECT_EQ(TestFixture::List::next(&a), nullptr);
  EXPECT_EQ(TestFixture::List::position(&a), 0u);
}

TYPED_TEST(ChunkListTest, AppendsLinkInOrderWithConsecutivePositions) {
  using List = typename TestFixture::List;
  std::vector<typename TestFixture::N> nodes(6);
  for (size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].payload = static_cast<int>(100 + i);
    EXPECT_EQ(this->list.append(&nodes[i]), i);
    EXPECT_EQ(this->list.current(), &nodes[i]);
    EXPECT_EQ(this->list.count(), i + 1);
  }
  size_t i = 0;
  for (auto* n = this->list.first(); n != nullptr; n = List::next(n), ++i) {
    ASSERT_LT(i, nodes.size());
    EXPECT_EQ(n, &nodes[i]);
    EXPECT_EQ(List::position(n), i);
    EXPECT_EQ(n->payload, static_cast<int>(100 + i));
  }
  EXPECT_EQ(i, nodes.size());
}

TYPED_TEST(ChunkListTest, AdvanceCurrentNeverMovesBackwards) {
  typename TestFixture::N a, b, c;
  this->list.append(&a);
  this->list.append(&b);
  this->list.append(&c);
  ASSERT_EQ(this->list.current(), &c);
  this->list.advance_current(&a);
  EXPECT_EQ(this->list.current(), &c);
  this->list.advance_current(&b);
  EXPECT_EQ(this->list.current(), &c);
  this->list.advance_current(&c);
  EXPECT_EQ(this->list.current(), &c);
}

TYPED_TEST(ChunkListTest, AdvanceCurrentMovesForwardToALinkedNode) {
  typename TestFixture::N a, b;
  this->list.append(&a);
  TestFixture::link_without_advancing(&a, &b);
  ASSERT_EQ(this->list.current(), &a);
  this->list.advance_current(&b);
  EXPECT_EQ(this->list.current(), &b);
}

// An append that starts from a stale `current` follows next to the real
// tail instead of overwriting a link (the CAS loser's path).
TYPED_TEST(ChunkListTest, AppendFromStaleCurrentFollowsToTheTail) {
  using List = typename TestFixture::List;
  typename TestFixture::N a, b, c, d;
  this->list.append(&a);
  TestFixture::link_without_advancing(&a, &b);
  TestFixture::link_without_advancing(&b, &c);
  ASSERT_EQ(this->list.current(), &a);

  EXPECT_EQ(this->list.append(&d), 3u);
  EXPECT_EQ(List::next(&a), &b);
  EXPECT_EQ(List::next(&b), &c);
  EXPECT_EQ(List::next(&c), &d);
  EXPECT_EQ(List::next(&d), nullptr);
  EXPECT_EQ(this->list.current(), &d);
  // Only append() counts; the two hand-linked nodes stand for appends
  // still in flight.
  EXPECT_EQ(this->list.count(), 2u);
}

}  // namespace
}  // namespace hakmem::lockfree
