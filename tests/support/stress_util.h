// Shared by the reliability tests (stress, fork, OOM, bad inputs):
// request sizes drawn like a real program's, and tagged blocks that record
// who allocated them so a verifier can detect any overwrite, overlap or
// early reuse.
//
// Layout of a tagged block of n >= 16 bytes:
//   [0, 8) id   [8, 16) n   [16, n - 8) pattern of id   [n - 8, n) id
// (the tail id only when n >= 24; the pattern is pattern.h's, starting at
// its byte 0 at offset 16). Blocks under 16 bytes hold the pattern of id only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tests/support/pattern.h"
#include "tests/support/rng.h"

namespace hakmem_test {

// Mostly small requests, some medium, rarely one above the largest class
// (32 KiB) when `large_one_in` is nonzero.
inline size_t random_size(Rng& r, unsigned large_one_in = 0) {
  const uint64_t x = r.next();
  if (large_one_in != 0 && (x >> 40) % large_one_in == 0) return 32 * 1024 + 1 + (x % (512 * 1024));
  switch (x & 7) {
    case 0:
    case 1:
    case 2:
      return 16 + (x >> 8) % 113;  // 16..128
    case 3:
    case 4:
      return 16 + (x >> 8) % 1009;  // up to 1 KiB
    case 5:
    case 6:
      return 16 + (x >> 8) % 8177;  // up to 8 KiB
    default:
      return 16 + (x >> 8) % 32753;  // up to 32 KiB
  }
}

// Offset of the pattern in a tagged block of n >= 16 bytes.
constexpr size_t kTaggedBody = 16;

// Byte i (kTaggedBody <= i < n - 8) of a tagged block with this id.
inline uint8_t tagged_body_byte(uint64_t id, size_t i) { return pattern_byte(id, i - kTaggedBody); }

inline void fill(void* p, size_t n, uint64_t id) {
  auto* c = static_cast<unsigned char*>(p);
  if (n < 16) {
    fill_pattern(c, n, id);
    return;
  }
  memcpy(c, &id, 8);
  const uint64_t n64 = n;
  memcpy(c + 8, &n64, 8);
  if (n >= 24) {
    fill_pattern(c + kTaggedBody, n - 24, id);
    memcpy(c + n - 8, &id, 8);
  }
}

// True if p holds exactly the pattern fill(p, n, id) wrote.
inline bool verify(const void* p, size_t n, uint64_t id) {
  const auto* c = static_cast<const unsigned char*>(p);
  if (n < 16) return check_pattern(c, n, id);
  uint64_t v;
  memcpy(&v, c, 8);
  if (v != id) return false;
  memcpy(&v, c + 8, 8);
  if (v != n) return false;
  if (n >= 24) {
    memcpy(&v, c + n - 8, 8);
    if (v != id) return false;
    if (!check_pattern(c + kTaggedBody, n - 24, id)) return false;
  }
  return true;
}

// The size a tagged block (n >= 16) recorded in itself.
inline size_t tagged_size(const void* p) {
  uint64_t n;
  memcpy(&n, static_cast<const char*>(p) + 8, 8);
  return size_t(n);
}
inline uint64_t tagged_id(const void* p) {
  uint64_t id;
  memcpy(&id, p, 8);
  return id;
}

}  // namespace hakmem_test
