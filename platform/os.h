// The operating-system layer: address space, page return and raw output.
// Nothing here allocates through malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hakmem::os {

// Maps `size` bytes (a multiple of the page size) of zeroed, read-write
// memory whose start is aligned to `align` (a power of two >= page size).
// Returns nullptr on failure (errno set by mmap).
void* map_aligned(size_t size, size_t align) noexcept;
void unmap(void* p, size_t size) noexcept;
// Gives the pages back to the OS; they read as zero when next touched.
void decommit(void* p, size_t size) noexcept;
// Gives the pages back to the OS lazily (MADV_FREE): they stay resident
// until the kernel needs memory, and read as zero or as their old contents
// when next touched. Falls back to decommit where MADV_FREE is missing.
void decommit_lazily(void* p, size_t size) noexcept;
// CLOCK_MONOTONIC_COARSE in nanoseconds (a vDSO read, no system call; the
// resolution is the kernel tick, a few milliseconds).
uint64_t coarse_now_ns() noexcept;
// Asks for transparent huge pages on [p, p + size) (2 MiB-aligned ranges
// that will be touched densely: one fault per 2 MiB instead of per 4 KiB).
void advise_huge_pages(void* p, size_t size) noexcept;
// Asks for no transparent huge pages on [p, p + size) (sparse tables).
void advise_no_huge_pages(void* p, size_t size) noexcept;

// Resident set size of the whole process in bytes (from /proc/self/statm),
// or 0 if unavailable.
size_t process_resident_bytes() noexcept;
// Residency of `pages` pages from page-aligned p (mincore): bit 0 of
// vec[i] is set if page i is resident. Pages that are not mapped read as
// not resident.
void resident_pages(const void* p, size_t pages, unsigned char* vec) noexcept;
// Resident bytes of [p, p + size), p page-aligned.
size_t resident_bytes_in(const void* p, size_t size) noexcept;

inline constexpr int kStderr = 2;

// Writes everything to fd, retrying on EINTR; never allocates.
void write_all(int fd, const char* s, size_t n) noexcept;

// 64 random bits (getrandom, falling back to the time stamp counter).
uint64_t random_u64() noexcept;

// A fixed-capacity line builder on the stack, for messages written with
// write(2). Appends silently truncate at capacity.
class Line {
 public:
  Line& str(const char* s) noexcept;
  Line& u64(uint64_t v) noexcept;
  Line& hex(uintptr_t v) noexcept;
  Line& ch(char c) noexcept;
  void write_to(int fd) noexcept { write_all(fd, buf_, len_); }
  const char* data() const noexcept { return buf_; }
  size_t size() const noexcept { return len_; }

 private:
  char buf_[512];
  size_t len_ = 0;
};

}  // namespace hakmem::os
