// Single-threaded semantics of lockfree::SlabBitmap.
#include "lockfree/slab_bitmap.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "tests/lockfree/test_policies.h"

namespace hakmem::lockfree {
namespace {

template <class P>
class SlabBitmapTest : public ::testing::Test {};

TYPED_TEST_SUITE(SlabBitmapTest, testing::Policies, testing::PolicyName);

TYPED_TEST(SlabBitmapTest, WordWidths) {
  EXPECT_EQ((SlabBitmap<TypeParam, uint32_t>::kBits), 32u);
  EXPECT_EQ((SlabBitmap<TypeParam, uint64_t>::kBits), 64u);
}

TYPED_TEST(SlabBitmapTest, DefaultHasNothingToClaim) {
  SlabBitmap<TypeParam> b;
  EXPECT_EQ(b.snapshot(), 0u);
  EXPECT_EQ(b.claim_any(), SlabBitmap<TypeParam>::kNone);
  EXPECT_FALSE(b.claim(0));
  EXPECT_FALSE(b.claim(31));
  EXPECT_EQ(b.snapshot(), 0u);
}

TYPED_TEST(SlabBitmapTest, ClaimSucceedsOnlyOnceAndClearsOnlyItsBit) {
  SlabBitmap<TypeParam> b(0b1011u);
  EXPECT_TRUE(b.claim(1));
  EXPECT_EQ(b.snapshot(), 0b1001u);
  EXPECT_FALSE(b.test(1));
  EXPECT_FALSE(b.claim(1));  // already held
  EXPECT_FALSE(b.claim(2));  // never free
  EXPECT_EQ(b.snapshot(), 0b1001u);
  EXPECT_TRUE(b.test(0));
  EXPECT_TRUE(b.test(3));
}

TYPED_TEST(SlabBitmapTest, ClaimAnyTakesLowestFreeSlotFirst) {
  SlabBitmap<TypeParam> b(0b10100u);
  EXPECT_EQ(b.claim_any(), 2);
  EXPECT_EQ(b.claim_any(), 4);
  EXPECT_EQ(b.claim_any(), SlabBitmap<TypeParam>::kNone);
  EXPECT_EQ(b.snapshot(), 0u);
}

TYPED_TEST(SlabBitmapTest, ReleaseSetsTheBitAndDetectsADoubleRelease) {
  SlabBitmap<TypeParam> b(0u);
  EXPECT_TRUE(b.release(3));
  EXPECT_TRUE(b.test(3));
  EXPECT_EQ(b.snapshot(), 0b1000u);
  EXPECT_FALSE(b.release(3));  // releasing a slot nobody held
  EXPECT_EQ(b.snapshot(), 0b1000u);
  EXPECT_EQ(b.claim_any(), 3);
  EXPECT_TRUE(b.release(3));
}

TYPED_TEST(SlabBitmapTest, FullWordClaimsEverySlotExactlyOnce) {
  SlabBitmap<TypeParam> b(0xFFFFFFFFu);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(b.claim_any(), i);
  EXPECT_EQ(b.claim_any(), SlabBitmap<TypeParam>::kNone);
  for (unsigned i = 0; i < 32; ++i) EXPECT_TRUE(b.release(31 - i));
  EXPECT_EQ(b.snapshot(), 0xFFFFFFFFu);
}

TYPED_TEST(SlabBitmapTest, SixtyFourBitWordUsesTheHighBit) {
  using B64 = SlabBitmap<TypeParam, uint64_t>;
  B64 b(uint64_t{1} << 63);
  EXPECT_TRUE(b.test(63));
  EXPECT_EQ(b.claim_any(), 63);
  EXPECT_EQ(b.snapshot(), 0u);
  EXPECT_FALSE(b.claim(63));
  EXPECT_TRUE(b.release(63));
  EXPECT_TRUE(b.claim(63));
  EXPECT_TRUE(b.release(40));
  EXPECT_EQ(b.snapshot(), uint64_t{1} << 40);
}

}  // namespace
}  // namespace hakmem::lockfree
