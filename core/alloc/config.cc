#include "core/alloc/config.h"

#include <stdlib.h>
#include <string.h>

#include "platform/os.h"
#include "platform/version.h"

namespace hakmem {
namespace {

// Larger numbers are refused (a mistyped value, not a request).
constexpr uint64_t kMaxValue = uint64_t{1} << 40;
// HAKMEM_MEM_DIET is 0, 1 or 2 (MemDiet in core/heap/slab_source.h).
constexpr uint64_t kMaxMemDiet = 2;
// HAKMEM_PURGE_MS is at most a day.
constexpr uint64_t kMaxPurgeMs = uint64_t{24} * 3600 * 1000;
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
  if (const char* v = getenv("HAKMEM_STATS")) c.stats_json = strcmp(v, "json") == 0;
  if (const char* v = getenv("HAKMEM_STATS_FILE")) {
    const size_t n = strlen(v);
    if (n > 0 && n < Config::kMaxPath) {
      memcpy(c.stats_file, v, n + 1);
      if (getenv("HAKMEM_STATS") == nullptr) c.stats = true;
    }
  }
  c.verbose = env_flag("HAKMEM_VERBOSE", false);
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
  // Above a day is a mistyped value; the default stays.
  if (parse_u64(getenv("HAKMEM_PURGE_MS"), &n) && n <= kMaxPurgeMs) c.purge_ms = n;
  if (const char* v = getenv("HAKMEM_PURGE_MODE")) {
    if (strcmp(v, "free") == 0) c.purge_lazily = true;
    if (strcmp(v, "dontneed") == 0) c.purge_lazily = false;
  }
  c.background_purge = env_flag("HAKMEM_BACKGROUND_PURGE", false);
  if (parse_u64(getenv("HAKMEM_MEMORY_LIMIT_MB"), &n)) c.memory_limit_mb = n;
  parse_prewarm(getenv("HAKMEM_PREWARM"), &c);
  return c;
}

namespace {

os::Line option(const char* name) noexcept {
  os::Line line;
  line.str("hakmem: option ").str(name).ch('=');
  return line;
}

}  // namespace

void print_config(const Config& c, int fd) noexcept {
  os::Line()
      .str("hakmem: version " HAKMEM_VERSION_STRING " (" HAKMEM_SONAME ")")
#if defined(HAKMEM_RELEASE) && HAKMEM_RELEASE
      .str(", release build\n")
#else
      .str(", debug build\n")
#endif
      .write_to(fd);
  option("HAKMEM_LOG").u64(c.log).ch('\n').write_to(fd);
  option("HAKMEM_STATS").str(c.stats_json ? "json" : c.stats ? "1" : "0").ch('\n').write_to(fd);
  option("HAKMEM_STATS_FILE").str(c.stats_file[0] ? c.stats_file : "(stderr)").ch('\n').write_to(fd);
  option("HAKMEM_VERBOSE").u64(c.verbose).ch('\n').write_to(fd);
  option("HAKMEM_ON_ERROR")
      .str(c.on_error == OnError::kContinue ? "continue" : "abort")
      .ch('\n')
      .write_to(fd);
  option("HAKMEM_CRASH_REPORT").u64(c.crash_report).ch('\n').write_to(fd);
  option("HAKMEM_MEM_DIET").u64(c.mem_diet).ch('\n').write_to(fd);
  option("HAKMEM_DIRTY_MB").u64(c.dirty_limit >> 20).ch('\n').write_to(fd);
  option("HAKMEM_LARGE_CACHE_MB").u64(c.large_cache_limit >> 20).ch('\n').write_to(fd);
  option("HAKMEM_PURGE_MS").u64(c.purge_ms).ch('\n').write_to(fd);
  option("HAKMEM_PURGE_MODE").str(c.purge_lazily ? "free" : "dontneed").ch('\n').write_to(fd);
  option("HAKMEM_BACKGROUND_PURGE").u64(c.background_purge).ch('\n').write_to(fd);
  os::Line limit = option("HAKMEM_MEMORY_LIMIT_MB");
  if (c.memory_limit_mb == Config::kLimitFromCgroup) {
    limit.str("cgroup");
  } else {
    limit.u64(c.memory_limit_mb);
  }
  limit.ch('\n').write_to(fd);
  os::Line prewarm = option("HAKMEM_PREWARM");
  if (c.prewarm_count == 0) prewarm.str("none");
  for (unsigned i = 0; i < c.prewarm_count; ++i) {
    if (i) prewarm.ch(',');
    prewarm.u64(c.prewarm[i].size).ch(':').u64(c.prewarm[i].chunks);
  }
  prewarm.ch('\n').write_to(fd);
}

}  // namespace hakmem
