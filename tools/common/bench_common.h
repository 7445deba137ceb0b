// Small helpers shared by the benchmark programs under tools/.
//
// Nothing here allocates: the programs measure whichever malloc is linked or
// preloaded, so the harness itself must not add allocator traffic of its own.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {

// splitmix64: turns a seed (and a stream number) into well-mixed state.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// wyrand: one multiply per number, good statistical quality, 8 bytes of state.
// Each thread owns its own instance.
class Rng {
 public:
  explicit Rng(uint64_t seed = 1, uint64_t stream = 0)
      : state_(Mix64(seed ^ Mix64(stream + 0x632BE59BD9B4E019ull))) {}

  uint64_t Next() {
    state_ += 0xA0761D6478BD642Full;
    __uint128_t t = static_cast<__uint128_t>(state_) * (state_ ^ 0xE7037ED1A0B428DBull);
    return static_cast<uint64_t>(t >> 64) ^ static_cast<uint64_t>(t);
  }

  // Uniform in [0, n) (Lemire's multiply-shift; the bias is < n / 2^64).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<__uint128_t>(Next()) * n) >> 64);
  }

  // Uniform in [lo, hi], both inclusive.
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }

  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Log-uniform in [lo, hi]: every power-of-two range is equally likely,
  // so small sizes are common and large ones still appear.
  uint64_t LogUniform(uint64_t lo, uint64_t hi);

 private:
  uint64_t state_;
};

inline uint64_t Rng::LogUniform(uint64_t lo, uint64_t hi) {
  if (lo >= hi) return lo;
  const double llo = __builtin_log2(static_cast<double>(lo));
  const double lhi = __builtin_log2(static_cast<double>(hi) + 1.0);
  uint64_t v = static_cast<uint64_t>(__builtin_exp2(llo + (lhi - llo) * Unit()));
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

inline double NowSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline void SleepSeconds(double s) {
  if (s <= 0) return;
  timespec ts;
  ts.tv_sec = static_cast<time_t>(s);
  ts.tv_nsec = static_cast<long>((s - static_cast<double>(ts.tv_sec)) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Peak resident set of the whole process so far, in KiB.
inline long PeakRssKb() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// Current resident set in KiB, from /proc/self/statm (second field, pages).
inline long CurrentRssKb() {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* p = buf;
  while (*p && *p != ' ') ++p;  // skip "size"
  long pages = strtol(p, nullptr, 10);
  return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

// Block stamping: a tag derived from the block's address and size is written
// at its start and its size's low byte at its end; Check() verifies both
// before the block is freed. A mismatch means two live blocks overlapped or a
// block was handed out twice.
inline uint64_t Tag(const void* p, size_t size) {
  return Mix64(reinterpret_cast<uintptr_t>(p) ^ (static_cast<uint64_t>(size) << 48));
}

inline void Stamp(void* p, size_t size) {
  if (size == 0) return;
  const uint64_t tag = Tag(p, size);
  memcpy(p, &tag, size < sizeof(tag) ? size : sizeof(tag));
  if (size > sizeof(tag)) {
    static_cast<unsigned char*>(p)[size - 1] = static_cast<unsigned char>(size | 1);
  }
}

inline bool Check(const void* p, size_t size) {
  if (size == 0) return true;
  const uint64_t tag = Tag(p, size);
  uint64_t got = 0;
  const size_t n = size < sizeof(tag) ? size : sizeof(tag);
  memcpy(&got, p, n);
  uint64_t want = 0;
  memcpy(&want, &tag, n);
  if (size > sizeof(tag) &&
      static_cast<const unsigned char*>(p)[size - 1] != static_cast<unsigned char>(size | 1)) {
    return false;
  }
  return got == want;
}

// Touches one byte in every page of a block (so the memory is really backed)
// and stamps it.
inline void TouchPages(void* p, size_t size) {
  auto* c = static_cast<unsigned char*>(p);
  for (size_t off = 0; off < size; off += 4096) c[off] = static_cast<unsigned char>(off >> 12 | 1);
  Stamp(p, size);
}

// Keeps a value alive so the compiler cannot drop the work that produced it.
template <class T>
inline void DoNotOptimize(T const& v) {
  asm volatile("" : : "r,m"(v) : "memory");
}

}  // namespace bench
