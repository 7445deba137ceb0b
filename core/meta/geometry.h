// The fixed geometry of hakmem's address space (docs/design.md, "Geometry").
#pragma once

#include <cstddef>
#include <cstdint>

#include "platform/machine.h"

namespace hakmem {

// A chunk: 2 MiB of address space aligned to 2 MiB, owned by one size class.
inline constexpr unsigned kChunkShift = 21;
inline constexpr size_t kChunkSize = size_t{1} << kChunkShift;
inline constexpr uintptr_t kChunkMask = kChunkSize - 1;

// A slab: 1/32 of a chunk. Slab 0 starts after the chunk header.
inline constexpr unsigned kSlabShift = 16;
inline constexpr size_t kSlabSize = size_t{1} << kSlabShift;
inline constexpr unsigned kSlabsPerChunk = kChunkSize / kSlabSize;
static_assert(kSlabsPerChunk == 32, "one 32-bit bitmap word per chunk");

// Every block is aligned to at least this (malloc's guarantee for x86-64).
inline constexpr size_t kMinAlign = 16;

inline constexpr uintptr_t align_down(uintptr_t x, size_t a) { return x & ~(uintptr_t(a) - 1); }
inline constexpr uintptr_t align_up(uintptr_t x, size_t a) {
  return (x + uintptr_t(a) - 1) & ~(uintptr_t(a) - 1);
}

}  // namespace hakmem
