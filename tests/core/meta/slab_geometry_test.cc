// A slab's block-start test (core/meta/slab.h, BasicSlab::is_block_start):
// for the geometry of every class's run, exactly the starts of its blocks
// pass, compared with a division over every offset of the run and around
// it, and over offsets far below and above (the subtraction wraps).
#include <gtest/gtest.h>

#include <cstdint>

#include "core/meta/chunk.h"
#include "core/meta/size_classes.h"

namespace hakmem {
namespace {

// A chunk-aligned address, never touched: the test only does arithmetic on
// addresses.
constexpr uintptr_t kBase = uintptr_t{0x7f1234000000};

bool expected_start(uint64_t off, uint32_t size, uint64_t capacity) {
  return off % size == 0 && off / size < capacity;
}

TEST(SlabGeometry, BlockStartIsExactForEveryClass) {
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    const uint32_t size = uint32_t(class_to_size(cls));
    const uint64_t run = uint64_t{class_run_slabs(cls)} * kSlabSize;
    // Slab 0's area starts after the chunk header, the others at the slab.
    for (const uintptr_t begin : {kBase + kChunkHeaderSize, kBase + kSlabSize}) {
      const uint32_t capacity = uint32_t((run - (begin - kBase) % kSlabSize) / size);
      Slab s;
      s.set_geometry(begin, capacity, size, cls);
      ASSERT_EQ(s.capacity, capacity);
      ASSERT_EQ(s.area_end(), begin + uint64_t{capacity} * size);
      unsigned starts = 0;
      for (uint64_t off = 0; off < run + 2 * size; ++off) {
        const bool got = s.is_block_start(reinterpret_cast<void*>(begin + off));
        ASSERT_EQ(got, expected_start(off, size, capacity))
            << "class " << cls << " size " << size << " offset " << off;
        starts += got;
      }
      EXPECT_EQ(starts, capacity) << "class " << cls;
      // Below the area (the offset wraps) and far above it: never a start,
      // even at multiples of the block size.
      for (uint64_t k = 1; k <= 4096; ++k) {
        ASSERT_FALSE(s.is_block_start(reinterpret_cast<void*>(begin - k * size))) << cls;
        ASSERT_FALSE(s.is_block_start(reinterpret_cast<void*>(begin - k))) << cls;
        ASSERT_FALSE(s.is_block_start(reinterpret_cast<void*>(begin + (capacity + k) * size)));
        ASSERT_FALSE(s.is_block_start(reinterpret_cast<void*>(begin + (uint64_t{1} << 32) * k)));
      }
    }
  }
}

// A descriptor without blocks (a run's later slabs): no pointer is a start.
TEST(SlabGeometry, NoBlocksMeansNoStart) {
  Slab s;
  s.set_geometry(kBase + kSlabSize, 0, 48, 2);
  for (uint64_t off = 0; off < kSlabSize; ++off) {
    ASSERT_FALSE(s.is_block_start(reinterpret_cast<void*>(kBase + kSlabSize + off))) << off;
  }
}

}  // namespace
}  // namespace hakmem
