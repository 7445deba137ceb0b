#include "tests/support/pattern.h"

namespace hakmem_test {
namespace {

inline uint64_t pattern_word(uintptr_t seed, size_t i) {
  uint64_t x = (uint64_t(seed) + 0x9E3779B97F4A7C15ull) * (i + 1);
  return x ^ (x >> 29) ^ uint64_t(seed);
}

}  // namespace

uint8_t pattern_byte(uintptr_t seed, size_t i) {
  return uint8_t(pattern_word(seed, i / 8) >> (8 * (i % 8)));
}

void fill_pattern(void* p, size_t n, uintptr_t seed) {
  auto* w = static_cast<uint64_t*>(p);
  const size_t words = n / 8;
  for (size_t i = 0; i < words; ++i) w[i] = pattern_word(seed, i);
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = words * 8; i < n; ++i) b[i] = pattern_byte(seed, i);
}

bool check_pattern(const void* p, size_t n, uintptr_t seed) {
  const auto* w = static_cast<const uint64_t*>(p);
  const size_t words = n / 8;
  for (size_t i = 0; i < words; ++i) {
    if (w[i] != pattern_word(seed, i)) return false;
  }
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = words * 8; i < n; ++i) {
    if (b[i] != pattern_byte(seed, i)) return false;
  }
  return true;
}

}  // namespace hakmem_test
