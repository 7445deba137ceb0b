// libFuzzer target: the input is a program of allocation operations on 64
// slots, run against hakmem's hak_ API and checked against a shadow model.
//
// Each operation is one opcode byte followed by its operands:
//   malloc / calloc / aligned_alloc / posix_memalign into a slot (freeing
//   what the slot held), realloc of a slot, free / free_sized of a slot,
//   free of a slot's block by another thread, hak_collect, hak_check.
// Sizes come from a mode byte: tiny (0..128), size-class boundaries
// (class size - 1, exactly, + 1), small (up to 32 KiB), large (up to
// 1 MiB, rarely up to 4 MiB).
//
// The shadow keeps each live block's size, alignment and content seed.
// Checked after every operation on the block involved: alignment, usable
// size (at least the request; for plain small requests at most a size
// class's 25% rounding), hak_owns, calloc zeroing, realloc keeping the old
// prefix, and the whole content pattern before every free and realloc. At
// the end of each input every block is freed and hak_check() must be 0 and
// the statistics must show no live block.
//
// Build and run with tools/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <thread>

#include "api/hakmem.h"

namespace {

[[noreturn]] void fail(const char* what, size_t a = 0, size_t b = 0) {
  fprintf(stderr, "alloc_fuzzer: %s (%zu, %zu)\n", what, a, b);
  abort();
}

struct Input {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  bool empty() const { return pos >= size; }
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  uint32_t u16() { return uint32_t(byte()) | uint32_t(byte()) << 8; }
  uint32_t u24() { return u16() | uint32_t(byte()) << 16; }
};

// The 40 small size classes (see core/meta/size_classes.h).
constexpr size_t kClassSizes[] = {16,   32,   48,   64,   80,    96,    112,   128,   160,   192,
                                  224,  256,  320,  384,  448,   512,   640,   768,   896,   1024,
                                  1280, 1536, 1792, 2048, 2560,  3072,  3584,  4096,  5120,  6144,
                                  7168, 8192, 10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};
constexpr size_t kMaxSmall = 32768;
// Blocks up to this size live in chunks (small and medium classes) and count
// in the classes' live_blocks; larger ones are large blocks.
constexpr size_t kMaxInChunk = size_t{1} << 20;

size_t read_size(Input& in) {
  const uint8_t mode = in.byte();
  switch (mode % 8) {
    case 0:
    case 1:
      return in.byte() % 129;  // 0..128
    case 2: {                  // a class boundary
      const size_t c = kClassSizes[in.byte() % 40];
      return c - 1 + in.byte() % 3;
    }
    case 3:
    case 4:
    case 5:
      return in.u16() % (kMaxSmall + 1);
    case 6:
      return kMaxSmall + 1 + in.u24() % (size_t{1} << 20);
    default:
      return in.byte() % 8 == 0 ? (size_t{1} << 20) + in.u24() % (size_t{3} << 20) : in.u16() % 512;
  }
}

struct Slot {
  unsigned char* p = nullptr;
  size_t size = 0;
  size_t align = 0;  // 0: plain malloc-like
  uint8_t seed = 0;
};

constexpr unsigned kSlots = 64;
Slot g_slots[kSlots];
unsigned g_large_live = 0;
uint64_t g_remote_frees = 0;  // small blocks freed by another thread, ever

uint8_t pattern(uint8_t seed, size_t i) { return uint8_t(seed + i * 7 + (i >> 9)); }

void fill(Slot& s) {
  // Whole block for small ones; first and last 4 KiB plus every 4 KiB step
  // for large ones (touching every byte of megabytes on every op would make
  // the fuzzer crawl).
  if (s.size <= 16384) {
    for (size_t i = 0; i < s.size; ++i) s.p[i] = pattern(s.seed, i);
    return;
  }
  for (size_t i = 0; i < 4096; ++i) s.p[i] = pattern(s.seed, i);
  for (size_t i = s.size - 4096; i < s.size; ++i) s.p[i] = pattern(s.seed, i);
  for (size_t i = 4096; i < s.size; i += 4096) s.p[i] = pattern(s.seed, i);
}

void verify(const Slot& s, size_t limit = SIZE_MAX) {
  const size_t n = s.size < limit ? s.size : limit;
  auto bad = [&](size_t i) { return s.p[i] != pattern(s.seed, i); };
  if (s.size <= 16384) {
    for (size_t i = 0; i < n; ++i) {
      if (bad(i)) fail("content changed", i, s.size);
    }
    return;
  }
  for (size_t i = 0; i < 4096 && i < n; ++i) {
    if (bad(i)) fail("content changed (large head)", i, s.size);
  }
  for (size_t i = s.size - 4096; i < n; ++i) {
    if (bad(i)) fail("content changed (large tail)", i, s.size);
  }
  for (size_t i = 4096; i < n; i += 4096) {
    if (bad(i)) fail("content changed (large body)", i, s.size);
  }
}

void check_new_block(const Slot& s, bool from_realloc) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(s.p);
  if (a % 16 != 0) fail("block not 16-byte aligned", a);
  if (s.align != 0 && a % s.align != 0) fail("block not aligned as asked", a, s.align);
  const size_t usable = hak_usable_size(s.p);
  if (usable < s.size) fail("usable size below the request", usable, s.size);
  if (!from_realloc && s.align == 0 && s.size <= kMaxSmall && usable > s.size + s.size / 4 + 16) {
    fail("usable size beyond the class rounding", usable, s.size);
  }
  // realloc keeps a small block while the new size fills more than half of
  // it (or the block is at most 64 bytes).
  if (from_realloc && s.size <= kMaxSmall && usable <= kMaxSmall && usable > 2 * s.size && usable > 64) {
    fail("realloc kept a block more than twice the size", usable, s.size);
  }
  if (!hak_owns(s.p)) fail("hak_owns denies a live block", a);
}

bool is_large(size_t n) { return n > kMaxInChunk; }

void release(Slot& s, Input& in) {
  if (s.p == nullptr) return;
  verify(s);
  if (is_large(s.size)) --g_large_live;
  if (s.align == 0 && in.byte() % 4 == 0) {
    hak_free_sized(s.p, s.size);
  } else {
    hak_free(s.p);
  }
  s = Slot{};
}

void take(Slot& s, void* p, size_t size, size_t align, uint8_t seed, bool from_realloc = false) {
  s.p = static_cast<unsigned char*>(p);
  s.size = size;
  s.align = align;
  s.seed = seed;
  if (is_large(size)) ++g_large_live;
  check_new_block(s, from_realloc);
}

void run(Input& in) {
  unsigned ops = 0;
  while (!in.empty() && ops++ < 2000) {
    const uint8_t op = in.byte();
    Slot& s = g_slots[in.byte() % kSlots];
    switch (op % 12) {
      case 0:
      case 1:
      case 2: {  // malloc
        release(s, in);
        size_t n = read_size(in);
        if (is_large(n) && g_large_live >= 8) n %= 4096;
        errno = 0;
        void* p = hak_malloc(n);
        if (p == nullptr) fail("malloc failed", n, size_t(errno));
        take(s, p, n, 0, in.byte());
        fill(s);
        break;
      }
      case 3: {  // calloc
        release(s, in);
        const size_t count = 1 + in.byte() % 16;
        size_t each = read_size(in) / count;
        if (is_large(count * each) && g_large_live >= 8) each %= 256;
        void* p = hak_calloc(count, each);
        if (p == nullptr) fail("calloc failed", count, each);
        take(s, p, count * each, 0, in.byte());
        for (size_t i = 0; i < s.size; ++i) {
          if (s.p[i] != 0) fail("calloc block not zeroed", i, s.size);
        }
        fill(s);
        break;
      }
      case 4: {  // aligned_alloc / posix_memalign
        release(s, in);
        const size_t align = size_t{16} << (in.byte() % 10);  // 16 .. 8192
        size_t n = read_size(in);
        if (is_large(n) && g_large_live >= 8) n %= 4096;
        void* p = nullptr;
        if (in.byte() % 2) {
          p = hak_aligned_alloc(align, n);
        } else if (hak_posix_memalign(&p, align, n) != 0) {
          p = nullptr;
        }
        if (p == nullptr) fail("aligned allocation failed", align, n);
        take(s, p, n, align, in.byte());
        fill(s);
        break;
      }
      case 5:
      case 6: {  // realloc (from null, grow, shrink, to zero)
        size_t n = read_size(in);
        if (is_large(n) && !is_large(s.size) && g_large_live >= 8) n %= 4096;
        if (s.p != nullptr) verify(s);
        const Slot old = s;
        void* p = hak_realloc(s.p, n);
        if (n == 0 && old.p != nullptr) {
          // realloc(p, 0) frees p and returns NULL.
          if (p != nullptr) fail("realloc(p, 0) returned a block");
          if (is_large(old.size)) --g_large_live;
          s = Slot{};
          break;
        }
        if (p == nullptr) fail("realloc failed", n);
        if (is_large(old.size)) --g_large_live;
        const size_t keep = old.size < n ? old.size : n;
        s.p = static_cast<unsigned char*>(p);
        s.size = old.size;  // the old pattern, for verifying the kept prefix
        if (old.p != nullptr) verify(s, keep);
        take(s, p, n, 0, uint8_t(old.seed + 1), /*from_realloc=*/true);
        fill(s);
        break;
      }
      case 7:
      case 8:
      case 9:  // free
        release(s, in);
        break;
      case 10: {  // free by another thread
        if (s.p == nullptr) break;
        verify(s);
        if (is_large(s.size)) {
          --g_large_live;
        } else {
          ++g_remote_frees;
        }
        std::thread([p = s.p] { hak_free(p); }).join();
        s = Slot{};
        break;
      }
      default:  // housekeeping
        if (in.byte() % 2) {
          hak_collect();
        } else if (const size_t problems = hak_check()) {
          fail("hak_check found problems", problems);
        }
        break;
    }
  }
  for (Slot& slot : g_slots) release(slot, in);
  if (const size_t problems = hak_check()) fail("hak_check at the end of the input", problems);
  hak_stats st;
  st.version = HAK_STATS_VERSION;
  if (hak_get_stats(&st) != 0) fail("hak_get_stats");
  // Every block is freed: none may count as live, except blocks other
  // threads freed into this thread's slabs, which wait on the slabs'
  // remote lists until this thread's next refill of their class.
  uint64_t live = 0;
  for (unsigned c = 0; c < st.num_classes; ++c) live += st.classes[c].live_blocks;
  if (live > g_remote_frees) fail("live blocks after freeing everything", live, g_remote_frees);
  if (st.large_live_blocks != 0) fail("large blocks still live", st.large_live_blocks);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  run(in);
  return 0;
}
