// Single-threaded semantics of lockfree::RemoteFreeList.
#include "lockfree/remote_free_list.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

template <class P>
struct Block {
  typename P::template Var<Block*> next{nullptr};
  int id = 0;
};

template <class P>
class RemoteFreeListTest : public ::testing::Test {
 protected:
  using B = Block<P>;
  using List = RemoteFreeList<B, P>;

  // The ids along a taken chain, following next to null.
  static std::vector<int> ids(B* chain) {
    std::vector<int> out;
    for (B* b = chain; b != nullptr && out.size() < 1000; b = b->next.load()) {
      out.push_back(b->id);
    }
    return out;
  }

  RemoteFreeListTest() {
    for (int i = 0; i < 8; ++i) blocks[i].id = i;
  }

  B blocks[8];
  List list;
};

TYPED_TEST_SUITE(RemoteFreeListTest, testing::Policies, testing::PolicyName);

TYPED_TEST(RemoteFreeListTest, StartsEmpty) {
  EXPECT_TRUE(this->list.empty());
  EXPECT_EQ(this->list.take_all(), nullptr);
  EXPECT_TRUE(this->list.empty());
}

TYPED_TEST(RemoteFreeListTest, PushReportsWhetherTheListWasEmpty) {
  EXPECT_TRUE(this->list.push(&this->blocks[0]));
  EXPECT_FALSE(this->list.empty());
  EXPECT_FALSE(this->list.push(&this->blocks[1]));
  EXPECT_FALSE(this->list.push(&this->blocks[2]));
}

TYPED_TEST(RemoteFreeListTest, TakeAllReturnsEverythingNewestFirstAndEmpties) {
  for (int i : {0, 1, 2}) this->list.push(&this->blocks[i]);
  EXPECT_EQ(TestFixture::ids(this->list.take_all()), (std::vector<int>{2, 1, 0}));
  EXPECT_TRUE(this->list.empty());
  EXPECT_EQ(this->list.take_all(), nullptr);
  // Usable again after a take, and empty again means "was empty" again.
  EXPECT_TRUE(this->list.push(&this->blocks[5]));
  EXPECT_EQ(TestFixture::ids(this->list.take_all()), (std::vector<int>{5}));
}

TYPED_TEST(RemoteFreeListTest, PushChainKeepsTheChainOrderAndLinksItsLast) {
  auto& b = this->blocks;
  this->list.push(&b[7]);
  // A pre-linked chain 3 -> 4 -> 5; 5's link is overwritten by push_chain.
  b[3].next.store(&b[4]);
  b[4].next.store(&b[5]);
  b[5].next.store(&b[6]);  // stale link: must be replaced
  EXPECT_FALSE(this->list.push_chain(&b[3], &b[5]));
  EXPECT_EQ(TestFixture::ids(this->list.take_all()), (std::vector<int>{3, 4, 5, 7}));
}

TYPED_TEST(RemoteFreeListTest, PushChainOnEmptyListTerminatesTheChain) {
  auto& b = this->blocks;
  b[1].next.store(&b[2]);
  b[2].next.store(&b[0]);  // stale link: must become null
  EXPECT_TRUE(this->list.push_chain(&b[1], &b[2]));
  EXPECT_EQ(TestFixture::ids(this->list.take_all()), (std::vector<int>{1, 2}));
}

TYPED_TEST(RemoteFreeListTest, SingleNodeChainIsAPush) {
  EXPECT_TRUE(this->list.push_chain(&this->blocks[4], &this->blocks[4]));
  EXPECT_EQ(TestFixture::ids(this->list.take_all()), (std::vector<int>{4}));
}

}  // namespace
}  // namespace hakmem::lockfree
