// Facts about the machine hakmem runs on (x86-64 Linux).
#pragma once

#include <cstddef>

namespace hakmem {

inline constexpr size_t kPageSize = 4096;

// User addresses on x86-64 Linux are below 2^47; the chunk registry covers
// exactly that range.
inline constexpr unsigned kAddressBits = 47;

inline constexpr size_t kCacheLine = 64;

}  // namespace hakmem
