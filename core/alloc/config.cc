#include "core/alloc/config.h"

#include <stdlib.h>
#include <string.h>

namespace hakmem {
namespace {

// Larger numbers are refused (a mistyped value, not a request).
constexpr uint64_t kMaxValue = uint64_t{1} << 40;
// HAKMEM_MEM_DIET is 0, 1 or 2 (MemDiet in core/heap/slab_source.h).
constexpr uint64_t kMaxMemDiet = 2;
// HAKMEM_PREWARM maps at most this many chunks per class.
constexpr uint64_t kMaxPrewarmChunks = 1024;

bool parse_u64(const char* s, uint64_t* out) {
  if (s == nullptr || *s < '0' || *s > '9') return false;
  uint64_t v = 0;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + uint64_t(*s - '0');
    if (v > kMaxValue) return false;
    ++s;
  }
  *out = v;
  return true;
}

bool env_flag(const char* name, bool fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == 0) return fallback;
  return !(strcmp(v, "0") == 0 || strcmp(v, "false") == 0 || strcmp(v, "no") == 0 ||
           strcmp(v, "off") == 0);
}

void parse_prewarm(const char* s, Config* c) {
  // size:chunks[,size:chunks...]
  while (s && *s && c->prewarm_count < Config::kMaxPrewarm) {
    uint64_t size = 0, chunks = 1;
    if (!parse_u64(s, &size)) return;
    while (*s >= '0' && *s <= '9') ++s;
    if (*s == ':') {
      ++s;
      if (!parse_u64(s, &chunks)) return;
      while (*s >= '0' && *s <= '9') ++s;
    }
    if (chunks > kMaxPrewarmChunks) chunks = kMaxPrewarmChunks;
    // Keep a size too big for 32 bits too big (it is then ignored as not
    // small) instead of letting it wrap around to a small one.
    if (size > UINT32_MAX) size = UINT32_MAX;
    c->prewarm[c->prewarm_count++] = {uint32_t(size), uint32_t(chunks)};
    if (*s != ',') return;
    ++s;
  }
}

}  // namespace

Config read_config_from_environment() noexcept {
  Config c;
  c.log = env_flag("HAKMEM_LOG", false);
  c.stats = env_flag("HAKMEM_STATS", false);
  c.crash_report = env_flag("HAKMEM_CRASH_REPORT", false);
  if (const char* v = getenv("HAKMEM_ON_ERROR")) {
    if (strcmp(v, "continue") == 0) c.on_error = OnError::kContinue;
  }
  uint64_t n = 0;
  const char* diet = getenv("HAKMEM_MEM_DIET");
  if (diet == nullptr) diet = getenv("HAKMEM_TINY_MEM_DIET");
  if (parse_u64(diet, &n) && n <= kMaxMemDiet) c.mem_diet = uint8_t(n);
  if (parse_u64(getenv("HAKMEM_DIRTY_MB"), &n)) c.dirty_limit = size_t(n) << 20;
  if (parse_u64(getenv("HAKMEM_LARGE_CACHE_MB"), &n)) c.large_cache_limit = size_t(n) << 20;
  parse_prewarm(getenv("HAKMEM_PREWARM"), &c);
  return c;
}

}  // namespace hakmem
