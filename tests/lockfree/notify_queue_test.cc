// Single-threaded semantics of lockfree::NotifyQueue.
#include "lockfree/notify_queue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

template <class P>
struct Node {
  typename P::template Var<Node*> notify_next{nullptr};
  typename P::template Atomic<uint8_t> notify_queued{0};
  int id = 0;
};

template <class P>
class NotifyQueueTest : public ::testing::Test {
 protected:
  using N = Node<P>;
  using Queue = NotifyQueue<N, P>;

  NotifyQueueTest() {
    for (int i = 0; i < 4; ++i) nodes[i].id = i;
  }

  // The ids drain() visits, in visiting order.
  std::vector<int> drain() {
    std::vector<int> out;
    queue.drain([&](N* n) { out.push_back(n->id); });
    return out;
  }

  N nodes[4];
  Queue queue;
};

TYPED_TEST_SUITE(NotifyQueueTest, testing::Policies, testing::PolicyName);

TYPED_TEST(NotifyQueueTest, StartsEmpty) {
  EXPECT_TRUE(this->queue.empty());
  EXPECT_EQ(this->drain(), std::vector<int>{});
  EXPECT_TRUE(this->queue.empty());
}

TYPED_TEST(NotifyQueueTest, ANodeIsQueuedOnceUntilDrained) {
  auto* a = &this->nodes[0];
  EXPECT_TRUE(this->queue.notify(a));
  EXPECT_FALSE(this->queue.empty());
  EXPECT_FALSE(this->queue.notify(a));  // already on its way
  EXPECT_FALSE(this->queue.notify(a));
  EXPECT_EQ(this->drain(), std::vector<int>{0});
  EXPECT_TRUE(this->queue.empty());
  EXPECT_EQ(this->drain(), std::vector<int>{});
  // Visited: it may be notified again.
  EXPECT_TRUE(this->queue.notify(a));
  EXPECT_EQ(this->drain(), std::vector<int>{0});
}

TYPED_TEST(NotifyQueueTest, DrainVisitsEveryQueuedNodeOnceNewestFirst) {
  for (int i : {2, 0, 3}) EXPECT_TRUE(this->queue.notify(&this->nodes[i]));
  EXPECT_FALSE(this->queue.notify(&this->nodes[0]));
  EXPECT_EQ(this->drain(), (std::vector<int>{3, 0, 2}));
  EXPECT_TRUE(this->queue.empty());
  for (auto& n : this->nodes) EXPECT_EQ(n.notify_queued.load(MemoryOrder::relaxed), 0);
}

TYPED_TEST(NotifyQueueTest, TryClaimThenPushClaimedIsANotify) {
  using Queue = typename TestFixture::Queue;
  auto* a = &this->nodes[1];
  EXPECT_TRUE(Queue::try_claim(a));
  EXPECT_FALSE(Queue::try_claim(a));
  EXPECT_FALSE(this->queue.notify(a));  // claimed counts as queued
  EXPECT_TRUE(this->queue.empty());     // but it is not linked yet
  this->queue.push_claimed(a);
  EXPECT_EQ(this->drain(), std::vector<int>{1});
  EXPECT_TRUE(Queue::try_claim(a));
  this->queue.push_claimed(a);
  EXPECT_EQ(this->drain(), std::vector<int>{1});
}

TYPED_TEST(NotifyQueueTest, UnclaimGivesTheNodeBack) {
  using Queue = typename TestFixture::Queue;
  auto* a = &this->nodes[2];
  EXPECT_TRUE(Queue::try_claim(a));
  Queue::unclaim(a);
  EXPECT_TRUE(this->queue.empty());
  EXPECT_EQ(this->drain(), std::vector<int>{});
  EXPECT_TRUE(this->queue.notify(a));
  EXPECT_EQ(this->drain(), std::vector<int>{2});
}

TYPED_TEST(NotifyQueueTest, ANodeMayBeNotifiedAgainWhileItIsVisited) {
  // The flag is clear when the visit runs, so news arriving during the visit
  // queue the node again, for the next drain (not this one).
  std::vector<int> visited;
  bool renotified = false;
  this->queue.notify(&this->nodes[0]);
  this->queue.notify(&this->nodes[1]);
  this->queue.drain([&](auto* n) {
    visited.push_back(n->id);
    if (n->id == 0) renotified = this->queue.notify(n);
  });
  EXPECT_EQ(visited, (std::vector<int>{1, 0}));
  EXPECT_TRUE(renotified);
  EXPECT_EQ(this->drain(), std::vector<int>{0});
}

TYPED_TEST(NotifyQueueTest, NodesNotifiedDuringADrainWaitForTheNextOne) {
  std::vector<int> visited;
  this->queue.notify(&this->nodes[3]);
  this->queue.drain([&](auto* n) {
    visited.push_back(n->id);
    EXPECT_TRUE(this->queue.notify(&this->nodes[2]));
  });
  EXPECT_EQ(visited, std::vector<int>{3});
  EXPECT_EQ(this->drain(), std::vector<int>{2});
}

}  // namespace
}  // namespace hakmem::lockfree
