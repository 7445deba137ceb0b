// Run-time configuration, read once from HAKMEM_* environment variables
// without allocating. See README.md ("Configuration") for the full list.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/meta/errors.h"

namespace hakmem {

struct Config {
  bool log = false;           // HAKMEM_LOG=1: one stderr line per chunk expansion
  bool stats = false;         // HAKMEM_STATS=1 (or json): statistics at exit
  bool stats_json = false;    // HAKMEM_STATS=json: as one JSON object
  bool verbose = false;       // HAKMEM_VERBOSE=1: the effective options at start
  bool crash_report = false;  // HAKMEM_CRASH_REPORT=1: summary on SIGSEGV/SIGBUS/SIGABRT
  OnError on_error = OnError::kAbort;  // HAKMEM_ON_ERROR=abort|continue
  // HAKMEM_MEM_DIET (alias HAKMEM_TINY_MEM_DIET): 0 never returns slab pages
  // to the OS, 1 (default) keeps at most dirty_limit bytes of free slabs
  // resident and returns the rest, 2 returns every free slab at once.
  uint8_t mem_diet = 1;
  size_t dirty_limit = size_t{16} << 20;        // HAKMEM_DIRTY_MB (default 16)
  size_t large_cache_limit = size_t{16} << 20;  // HAKMEM_LARGE_CACHE_MB (default 16)
  // HAKMEM_PURGE_MS (default 1000; 0 turns the decay off): under diet 1, a
  // free slab kept resident is returned to the OS once it has been free
  // this long. The check runs on slab acquire and release in any thread.
  uint64_t purge_ms = 1000;
  bool purge_lazily = false;      // HAKMEM_PURGE_MODE=free (MADV_FREE); default dontneed
  bool background_purge = false;  // HAKMEM_BACKGROUND_PURGE=1: a thread also purges when idle
  // HAKMEM_MEMORY_LIMIT_MB: unset (kLimitFromCgroup) keeps within the
  // cgroup's memory limit if there is one; 0 ignores any limit; N keeps
  // within N MiB of the process's resident set (README, "Container memory
  // limits").
  static constexpr uint64_t kLimitFromCgroup = UINT64_MAX;
  uint64_t memory_limit_mb = kLimitFromCgroup;
  // HAKMEM_PREWARM=size:chunks[,size:chunks...]: chunks mapped at start for
  // the class of each size.
  struct Prewarm {
    uint32_t size;
    uint32_t chunks;
  };
  static constexpr unsigned kMaxPrewarm = 8;
  Prewarm prewarm[kMaxPrewarm] = {};
  unsigned prewarm_count = 0;
  // HAKMEM_STATS_FILE=path: the statistics go to this file (created or
  // truncated at exit; "%p" is replaced by the process id) instead of
  // stderr. Set alone it implies HAKMEM_STATS=1. Empty: stderr.
  static constexpr unsigned kMaxPath = 4096;
  char stats_file[kMaxPath] = {};
};

// Parses the environment. Never allocates; unknown values keep defaults.
Config read_config_from_environment() noexcept;

// Writes the effective options to fd, one "hakmem: option NAME=VALUE" line
// each, after a line with the version (HAKMEM_VERBOSE=1 at start).
void print_config(const Config& c, int fd) noexcept;

}  // namespace hakmem
