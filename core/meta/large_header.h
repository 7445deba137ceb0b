// The descriptor of a large block: the header at the start of its mapping.
//
// A mapping is a whole number of 2 MiB granules starting at a granule, with
// the header at its start and the block `user_offset` bytes after it (64
// bytes, or the alignment for an over-aligned block; for alignments of a
// granule or more the block starts one granule above the header, and the
// registry marks that granule kGranuleLargeBelow).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/meta/geometry.h"

namespace hakmem {

inline constexpr uint64_t kLargeMagic = 0x68616b6d656d4c47ull;       // "hakmemLG"
inline constexpr uint64_t kLargeFreedMagic = 0x68616b6d656d4c46ull;  // "hakmemLF"

struct LargeHeader {
  uint64_t magic;         // kLargeMagic ^ address while live, kLargeFreedMagic when cached
  size_t mapping_size;    // bytes, a multiple of kChunkSize
  size_t user_offset;     // block address - header address
  size_t requested;       // bytes asked for
  uint64_t cached_at;     // while cached: when it was freed (os::coarse_now_ns)

  bool freed() const { return magic == kLargeFreedMagic; }
  size_t usable_size() const { return mapping_size - user_offset; }
};

// For a pointer in a granule the registry attributes to a large mapping's
// start (header_below: the granule above it): the header if the pointer is
// exactly a live or cached block's start, else null. A cached (freed) header
// is returned too; its magic tells the caller it is a double free.
inline LargeHeader* large_header_of(const void* p, bool header_below) noexcept {
  uintptr_t granule = reinterpret_cast<uintptr_t>(p) & ~kChunkMask;
  if (header_below) granule -= kChunkSize;
  auto* h = reinterpret_cast<LargeHeader*>(granule);
  if (h->magic != kLargeFreedMagic && h->magic != (kLargeMagic ^ granule)) return nullptr;
  if (granule + h->user_offset != reinterpret_cast<uintptr_t>(p)) return nullptr;
  return h;
}

}  // namespace hakmem
