// Shared by the reliability tests (stress, fork, OOM, bad inputs):
// a small PRNG, request sizes drawn like a real program's, and a block
// pattern that records who allocated a block so a verifier can detect any
// overwrite, overlap or early reuse.
//
// Layout of a tagged block of n >= 16 bytes:
//   [0, 8) id   [8, 16) n   [16, n - 8) fill byte derived from id   [n - 8, n) id
// (the tail id only when n >= 24). Blocks under 16 bytes hold the fill byte only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hakmem_test {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567) {}
  uint64_t next() {
    // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

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

inline uint8_t fill_byte(uint64_t id) { return uint8_t((id * 0x9E3779B97F4A7C15ull) >> 56) | 1; }

inline void fill(void* p, size_t n, uint64_t id) {
  auto* c = static_cast<unsigned char*>(p);
  if (n < 16) {
    memset(c, fill_byte(id), n);
    return;
  }
  memcpy(c, &id, 8);
  const uint64_t n64 = n;
  memcpy(c + 8, &n64, 8);
  if (n >= 24) {
    memset(c + 16, fill_byte(id), n - 24);
    memcpy(c + n - 8, &id, 8);
  }
}

// True if p holds exactly the pattern fill(p, n, id) wrote.
inline bool verify(const void* p, size_t n, uint64_t id) {
  const auto* c = static_cast<const unsigned char*>(p);
  const uint8_t b = fill_byte(id);
  if (n < 16) {
    for (size_t i = 0; i < n; ++i) {
      if (c[i] != b) return false;
    }
    return true;
  }
  uint64_t v;
  memcpy(&v, c, 8);
  if (v != id) return false;
  memcpy(&v, c + 8, 8);
  if (v != n) return false;
  if (n >= 24) {
    memcpy(&v, c + n - 8, 8);
    if (v != id) return false;
    const size_t mid = n - 24;
    // All middle bytes equal b  <=>  first is b and the range equals itself shifted by one.
    if (mid > 0 && (c[16] != b || (mid > 1 && memcmp(c + 16, c + 17, mid - 1) != 0))) return false;
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
