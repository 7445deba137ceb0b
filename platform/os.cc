#include "platform/os.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "platform/assert.h"
#include "platform/machine.h"

namespace hakmem::os {

void* map_aligned(size_t size, size_t align) noexcept {
  const int prot = PROT_READ | PROT_WRITE;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  if (align <= 4096) {
    void* p = mmap(nullptr, size, prot, flags, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  // Over-map by `align` and trim both ends to the aligned window.
  const size_t span = size + align;
  if (span < size) {
    errno = ENOMEM;
    return nullptr;
  }
  void* raw = mmap(nullptr, span, prot, flags | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + align - 1) & ~(uintptr_t(align) - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t end = start + span;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  return reinterpret_cast<void*>(aligned);
}

void unmap(void* p, size_t size) noexcept { munmap(p, size); }

void decommit(void* p, size_t size) noexcept { madvise(p, size, MADV_DONTNEED); }

void advise_no_huge_pages(void* p, size_t size) noexcept {
#ifdef MADV_NOHUGEPAGE
  madvise(p, size, MADV_NOHUGEPAGE);
#else
  (void)p;
  (void)size;
#endif
}

void decommit_lazily(void* p, size_t size) noexcept {
#ifdef MADV_FREE
  if (madvise(p, size, MADV_FREE) == 0) return;
#endif
  decommit(p, size);
}

uint64_t coarse_now_ns() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

void advise_huge_pages(void* p, size_t size) noexcept {
#ifdef MADV_HUGEPAGE
  madvise(p, size, MADV_HUGEPAGE);
#else
  (void)p;
  (void)size;
#endif
}

size_t process_resident_bytes() noexcept {
  const int saved = errno;
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errno = saved;
    return 0;
  }
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  errno = saved;
  if (n <= 0) return 0;
  buf[n] = 0;
  // Second field: resident pages.
  const char* s = buf;
  while (*s && *s != ' ') ++s;
  while (*s == ' ') ++s;
  size_t pages = 0;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + size_t(*s++ - '0');
  return pages * size_t(sysconf(_SC_PAGESIZE));
}

void resident_pages(const void* p, size_t pages, unsigned char* vec) noexcept {
  const int saved = errno;
  if (mincore(const_cast<void*>(p), pages * kPageSize, vec) != 0) memset(vec, 0, pages);
  errno = saved;
}

size_t resident_bytes_in(const void* p, size_t size) noexcept {
  unsigned char vec[512];
  size_t resident = 0;
  for (size_t done = 0; done < size;) {
    size_t n = (size - done + kPageSize - 1) / kPageSize;
    if (n > sizeof(vec)) n = sizeof(vec);
    resident_pages(static_cast<const char*>(p) + done, n, vec);
    for (size_t i = 0; i < n; ++i) resident += vec[i] & 1;
    done += n * kPageSize;
  }
  return resident * kPageSize;
}

void write_all(int fd, const char* s, size_t n) noexcept {
  const int saved = errno;
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    s += w;
    n -= size_t(w);
  }
  errno = saved;
}

uint64_t random_u64() noexcept {
  uint64_t v = 0;
  const int saved = errno;
  if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != ssize_t(sizeof(v))) {
    v = __builtin_ia32_rdtsc() * 0x9E3779B97F4A7C15ull;
  }
  errno = saved;
  return v | 1;
}

Line& Line::str(const char* s) noexcept {
  while (*s && len_ < sizeof(buf_)) buf_[len_++] = *s++;
  return *this;
}

Line& Line::ch(char c) noexcept {
  if (len_ < sizeof(buf_)) buf_[len_++] = c;
  return *this;
}

Line& Line::u64(uint64_t v) noexcept {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) ch(tmp[--n]);
  return *this;
}

Line& Line::hex(uintptr_t v) noexcept {
  str("0x");
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  while (n) ch(tmp[--n]);
  return *this;
}

}  // namespace hakmem::os

#if defined(HAKMEM_DEBUG) && HAKMEM_DEBUG
namespace hakmem::platform {

void assertion_failed(const char* what, const char* expr, const char* file, int line) noexcept {
  os::Line()
      .str("hakmem: assertion failed: ")
      .str(what)
      .str(" (")
      .str(expr)
      .str(", ")
      .str(file)
      .str(":")
      .u64(unsigned(line))
      .str(")\n")
      .write_to(os::kStderr);
  abort();
}

}  // namespace hakmem::platform
#endif
