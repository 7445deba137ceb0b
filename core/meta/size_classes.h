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
inline constexpr unsigned kNumClasses = 40;

namespace detail {

constexpr std::array<uint32_t, kNumClasses> make_class_sizes() {
  std::array<uint32_t, kNumClasses> sizes{};
  unsigned n = 0;
  for (uint32_t s = 16; s <= 128; s += 16) sizes[n++] = s;
  for (uint32_t base = 128; base < kMaxSmallSize; base *= 2) {
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

}  // namespace detail

static_assert(detail::kClassSizes[kNumClasses - 1] == kMaxSmallSize);

// Requires size <= kMaxSmallSize. O(1): one shift and one table load.
inline unsigned size_to_class(size_t size) {
  if (size <= detail::kFineLimit) {
    return detail::kFineLookup[(size + (size_t{1} << detail::kFineShift) - 1) >> detail::kFineShift];
  }
  return detail::kCoarseLookup[(size + (size_t{1} << detail::kCoarseShift) - 1) >> detail::kCoarseShift];
}

inline constexpr size_t class_to_size(unsigned cls) { return detail::kClassSizes[cls]; }

}  // namespace hakmem
