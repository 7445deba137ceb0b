// Size classes: small requests are rounded up to one of kNumClasses block
// sizes, looked up in O(1) through two byte tables.
//
// The set: multiples of 16 up to 128 (the densest part of most programs'
// size histograms, and what the Larson workload draws from), then four
// classes per power of two up to 32 KiB, which bounds internal waste at 25%
// and includes every power of two (so power-of-two classes are naturally
// aligned, which aligned_alloc relies on). Sizes above kMaxSmallSize take
// the large path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace hakmem {

inline constexpr size_t kMaxSmallSize = 32 * 1024;
inline constexpr unsigned kNumSmallClasses = 40;

// Medium classes continue the set above kMaxSmallSize, four per power of
// two up to kMaxMediumSize (40, 48, 56, 64, 80, ... 896, 1024 KiB). A
// medium "slab" is a run of medium_run_slabs(cls) contiguous 64 KiB slabs
// of a chunk (core/meta/chunk.h); the thread heaps treat it as a slab of
// its class. Sizes above kMaxMediumSize take the large path (a mapping of
// their own). Every medium size is a multiple of kMediumAlign, and so is
// every medium block's address.
inline constexpr size_t kMaxMediumSize = 1024 * 1024;
inline constexpr unsigned kNumMediumClasses = 20;
inline constexpr size_t kMediumAlign = 8 * 1024;
// Small and medium classes together: a thread heap has a slot for each.
inline constexpr unsigned kNumClasses = kNumSmallClasses + kNumMediumClasses;

namespace detail {

constexpr std::array<uint32_t, kNumClasses> make_class_sizes() {
  std::array<uint32_t, kNumClasses> sizes{};
  unsigned n = 0;
  for (uint32_t s = 16; s <= 128; s += 16) sizes[n++] = s;
  for (uint32_t base = 128; base < kMaxMediumSize; base *= 2) {
    for (uint32_t q = 1; q <= 4; ++q) sizes[n++] = base + q * (base / 4);
  }
  return sizes;
}

inline constexpr std::array<uint32_t, kNumClasses> kClassSizes = make_class_sizes();

// Sizes up to 1024 are looked up in 16-byte steps, larger ones in 128-byte
// steps; every class boundary above 1024 is a multiple of 128.
inline constexpr size_t kFineLimit = 1024;
inline constexpr unsigned kFineShift = 4;
inline constexpr unsigned kCoarseShift = 7;

template <size_t Limit, unsigned Shift>
constexpr std::array<uint8_t, (Limit >> Shift) + 1> make_lookup() {
  std::array<uint8_t, (Limit >> Shift) + 1> table{};
  unsigned cls = 0;
  for (size_t i = 0; i < table.size(); ++i) {
    const size_t size = i << Shift;
    while (kClassSizes[cls] < size) ++cls;
    table[i] = static_cast<uint8_t>(cls);
  }
  return table;
}

inline constexpr auto kFineLookup = make_lookup<kFineLimit, kFineShift>();
inline constexpr auto kCoarseLookup = make_lookup<kMaxSmallSize, kCoarseShift>();

// Slabs in a run of medium class size `size`: the fewest (at least one, at
// most 16) whose 64 KiB multiple wastes at most an eighth after the last
// whole block; 1 for the small classes.
constexpr unsigned run_slabs_for(uint32_t size) {
  constexpr uint32_t kSlab = 64 * 1024;
  if (size <= kMaxSmallSize) return 1;
  for (unsigned k = 1; k < 16; ++k) {
    const uint32_t run = k * kSlab;
    if (run >= size && (run % size) * 8 <= run) return k;
  }
  return 16;
}

template <size_t N>
constexpr std::array<uint8_t, N> make_run_slabs() {
  std::array<uint8_t, N> runs{};
  for (unsigned c = 0; c < N; ++c) runs[c] = static_cast<uint8_t>(run_slabs_for(kClassSizes[c]));
  return runs;
}
inline constexpr auto kRunSlabs = make_run_slabs<kNumClasses>();

// Medium sizes are looked up in kMediumAlign steps.
inline constexpr unsigned kMediumShift = 13;
constexpr std::array<uint8_t, (kMaxMediumSize >> kMediumShift) + 1> make_medium_lookup() {
  std::array<uint8_t, (kMaxMediumSize >> kMediumShift) + 1> table{};
  unsigned cls = kNumSmallClasses;
  for (size_t i = 0; i < table.size(); ++i) {
    const size_t size = i << kMediumShift;
    while (cls < kNumClasses - 1 && kClassSizes[cls] < size) ++cls;
    table[i] = static_cast<uint8_t>(size <= kMaxSmallSize ? kNumSmallClasses : cls);
  }
  return table;
}
inline constexpr auto kMediumLookup = make_medium_lookup();

}  // namespace detail

static_assert(detail::kClassSizes[kNumSmallClasses - 1] == kMaxSmallSize);
static_assert(detail::kClassSizes[kNumClasses - 1] == kMaxMediumSize);
static_assert(kMaxMediumSize % kMediumAlign == 0 && (1u << detail::kMediumShift) == kMediumAlign);

namespace detail {
constexpr bool medium_sizes_aligned() {
  for (unsigned c = kNumSmallClasses; c < kNumClasses; ++c) {
    if (kClassSizes[c] % kMediumAlign != 0) return false;
  }
  return true;
}
static_assert(medium_sizes_aligned(), "medium blocks are kMediumAlign-aligned");
}  // namespace detail

// Requires size <= kMaxSmallSize. O(1): one shift and one table load.
inline unsigned size_to_class(size_t size) {
  if (size <= detail::kFineLimit) {
    return detail::kFineLookup[(size + (size_t{1} << detail::kFineShift) - 1) >> detail::kFineShift];
  }
  return detail::kCoarseLookup[(size + (size_t{1} << detail::kCoarseShift) - 1) >> detail::kCoarseShift];
}

// Requires kMaxSmallSize < size <= kMaxMediumSize. O(1): one table load.
inline unsigned medium_size_to_class(size_t size) {
  return detail::kMediumLookup[(size + kMediumAlign - 1) >> detail::kMediumShift];
}

// The class of any size up to kMaxMediumSize (small or medium).
inline unsigned any_size_to_class(size_t size) {
  return size <= kMaxSmallSize ? size_to_class(size) : medium_size_to_class(size);
}

inline constexpr size_t class_to_size(unsigned cls) { return detail::kClassSizes[cls]; }
inline constexpr bool is_medium_class(unsigned cls) { return cls >= kNumSmallClasses; }
// Slabs per run of the class: 1 for small classes.
inline constexpr unsigned class_run_slabs(unsigned cls) { return detail::kRunSlabs[cls]; }

}  // namespace hakmem
