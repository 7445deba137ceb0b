// The one block pattern of the tests: deterministic contents that depend on
// a seed and on each byte's offset, so a block that was overwritten, copied
// to the wrong place or handed out twice no longer checks. The pattern of a
// shorter length is a prefix of the pattern of a longer one (realloc checks
// rely on it). Tagged blocks (stress_util.h) use it for their bodies.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hakmem_test {

// Byte i of the pattern of `seed`.
uint8_t pattern_byte(uintptr_t seed, size_t i);

// Writes the first n bytes of the pattern of `seed` to [p, p+n).
void fill_pattern(void* p, size_t n, uintptr_t seed);
// True if [p, p+n) holds fill_pattern(seed).
bool check_pattern(const void* p, size_t n, uintptr_t seed);

}  // namespace hakmem_test
