// Size classes (core/meta/size_classes.h): the O(1) lookup returns the smallest
// class that fits, for every small size, and the class set has the promised
// shape. The last test checks that the allocator hands out exactly those
// block sizes.
#include "core/meta/size_classes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/alloc/allocator.h"
#include "api/hakmem.h"

namespace hakmem {
namespace {

TEST(SizeClasses, ShapeOfTheSet) {
  ASSERT_EQ(detail::kClassSizes.size(), kNumClasses);
  EXPECT_EQ(class_to_size(0), 16u);
  EXPECT_EQ(class_to_size(kNumSmallClasses - 1), kMaxSmallSize);
  EXPECT_EQ(class_to_size(kNumClasses - 1), kMaxMediumSize);
  for (unsigned c = 0; c < kNumClasses; ++c) {
    EXPECT_EQ(class_to_size(c) % 16, 0u) << "class " << c;
    if (c > 0) EXPECT_GT(class_to_size(c), class_to_size(c - 1)) << "class " << c;
  }
  // Multiples of 16 up to 128, every one of them a class.
  for (unsigned c = 0; c < 8; ++c) EXPECT_EQ(class_to_size(c), 16u * (c + 1));
  // Every power of two from 16 to 32 KiB is a class (aligned_alloc relies on it).
  for (size_t p = 16; p <= kMaxSmallSize; p *= 2) {
    EXPECT_EQ(class_to_size(size_to_class(p)), p) << p;
  }
  // The class count fits the statistics array.
  EXPECT_LE(kNumClasses, unsigned(HAK_STATS_MAX_CLASSES));
}

TEST(SizeClasses, EveryMediumSizeMapsToSmallestClassThatFits) {
  unsigned expected = kNumSmallClasses;
  for (size_t size = kMaxSmallSize + 1; size <= kMaxMediumSize; ++size) {
    while (class_to_size(expected) < size) ++expected;
    const unsigned cls = medium_size_to_class(size);
    ASSERT_EQ(cls, expected) << "size " << size;
    ASSERT_EQ(any_size_to_class(size), expected) << "size " << size;
    ASSERT_TRUE(is_medium_class(cls)) << "size " << size;
    ASSERT_LE((class_to_size(cls) - size) * 4, size) << "at most 25% waste, size " << size;
  }
  for (size_t size = 0; size <= kMaxSmallSize; size += 7) {
    ASSERT_EQ(any_size_to_class(size), size_to_class(size));
  }
}

TEST(SizeClasses, MediumRunsFitAndWasteLittle) {
  for (unsigned c = 0; c < kNumClasses; ++c) {
    const size_t run = class_run_slabs(c) * kSlabSize;
    if (!is_medium_class(c)) {
      EXPECT_EQ(class_run_slabs(c), 1u) << "class " << c;
      continue;
    }
    EXPECT_EQ(class_to_size(c) % kMediumAlign, 0u) << "class " << c;
    ASSERT_GE(run, class_to_size(c)) << "class " << c;
    EXPECT_LE(class_run_slabs(c), 16u) << "class " << c;
    // The tail after the last block is at most an eighth of the run.
    EXPECT_LE((run % class_to_size(c)) * 8, run) << "class " << c;
  }
}

TEST(SizeClasses, EverySizeMapsToSmallestClassThatFits) {
  unsigned expected = 0;
  for (size_t size = 0; size <= kMaxSmallSize; ++size) {
    while (class_to_size(expected) < size) ++expected;
    const unsigned cls = size_to_class(size);
    ASSERT_LT(cls, kNumClasses) << "size " << size;
    ASSERT_EQ(cls, expected) << "size " << size;
    ASSERT_GE(class_to_size(cls), size) << "size " << size;
    if (cls > 0) ASSERT_LT(class_to_size(cls - 1), size) << "size " << size;
  }
}

TEST(SizeClasses, InternalWasteBounded) {
  // Above 128 bytes, four classes per power of two: at most 25% waste.
  for (size_t size = 129; size <= kMaxSmallSize; ++size) {
    const size_t block = class_to_size(size_to_class(size));
    ASSERT_LE((block - size) * 4, size) << "size " << size << " block " << block;
  }
  for (size_t size = 1; size <= 128; ++size) {
    ASSERT_LT(class_to_size(size_to_class(size)) - size, 16u) << "size " << size;
  }
}

TEST(SizeClasses, LookupTablesConsistent) {
  const auto& fine = detail::kFineLookup;
  const auto& coarse = detail::kCoarseLookup;
  ASSERT_EQ(fine.size(), (detail::kFineLimit >> detail::kFineShift) + 1);
  ASSERT_EQ(coarse.size(), (kMaxSmallSize >> detail::kCoarseShift) + 1);
  // Entry i answers for every size in ((i-1) << shift, i << shift].
  for (size_t i = 0; i < fine.size(); ++i) {
    const size_t hi = i << detail::kFineShift;
    ASSERT_LT(fine[i], kNumClasses);
    EXPECT_GE(class_to_size(fine[i]), hi) << "fine " << i;
    if (fine[i] > 0) EXPECT_LT(class_to_size(fine[i] - 1), hi) << "fine " << i;
    if (i > 0) EXPECT_GE(fine[i], fine[i - 1]) << "fine table not monotonic at " << i;
  }
  for (size_t i = 0; i < coarse.size(); ++i) {
    const size_t hi = i << detail::kCoarseShift;
    ASSERT_LT(coarse[i], kNumClasses);
    EXPECT_GE(class_to_size(coarse[i]), hi) << "coarse " << i;
    if (coarse[i] > 0) EXPECT_LT(class_to_size(coarse[i] - 1), hi) << "coarse " << i;
    if (i > 0) EXPECT_GE(coarse[i], coarse[i - 1]) << "coarse table not monotonic at " << i;
  }
  // The coarse table is only used above the fine limit, where every class
  // boundary is a multiple of its step.
  for (unsigned c = 0; c < kNumClasses; ++c) {
    if (class_to_size(c) > detail::kFineLimit) {
      EXPECT_EQ(class_to_size(c) % (size_t{1} << detail::kCoarseShift), 0u) << "class " << c;
    }
  }
  // Both tables agree where they overlap.
  for (size_t size = 0; size <= detail::kFineLimit; size += 128) {
    EXPECT_EQ(fine[(size + 15) >> detail::kFineShift], coarse[(size + 127) >> detail::kCoarseShift])
        << size;
  }
}

TEST(SizeClasses, AlignedSmallClassIsAlignedAndLargeEnough) {
  for (size_t align = 32; align <= 2 * kPageSize; align *= 2) {
    for (size_t size : {size_t{0}, size_t{1}, align / 2, align - 1, align, align + 1, 3 * align,
                        size_t{5000}, kMaxSmallSize - 1, kMaxSmallSize}) {
      const unsigned cls = aligned_small_class(size, align);
      if (align > kPageSize) {
        EXPECT_EQ(cls, kNumClasses) << "alignment above a page must take the large path";
        continue;
      }
      if (size > kMaxSmallSize) continue;
      ASSERT_LT(cls, kNumClasses) << "size " << size << " align " << align;
      EXPECT_GE(class_to_size(cls), size) << "size " << size << " align " << align;
      EXPECT_EQ(class_to_size(cls) % align, 0u) << "size " << size << " align " << align;
    }
  }
}

TEST(SizeClasses, AllocatorHandsOutClassSizedBlocks) {
  std::vector<void*> blocks;
  for (size_t size = 0; size <= kMaxSmallSize; size += (size < 2048 ? 1 : 61)) {
    void* p = hak_malloc(size);
    ASSERT_NE(p, nullptr) << size;
    EXPECT_EQ(hak_usable_size(p), class_to_size(size_to_class(size))) << "size " << size;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << "size " << size;
    blocks.push_back(p);
  }
  for (void* p : blocks) hak_free(p);
  EXPECT_EQ(hak_check(), 0u);
}

}  // namespace
}  // namespace hakmem
