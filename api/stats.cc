// Statistics: hak_get_stats, hak_print_stats, hak_print_stats_json and
// HAKMEM_STATS=1|json (to stderr or HAKMEM_STATS_FILE) at exit.
// Counters are read relaxed while other threads run, so a snapshot is
// approximate under load and exact once threads are quiescent.
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "api/hakmem.h"
#include "api/json_writer.h"
#include "core/alloc/process.h"
#include "core/heap/remote_free.h"
#include "platform/os.h"
#include "platform/version.h"

using namespace hakmem;
using lockfree::MemoryOrder;

namespace {

// What each version of struct hak_stats holds: its fields up to the one its
// successor added.
size_t stats_size_of_version(uint32_t version) {
  switch (version) {
    case 1:
      return offsetof(hak_stats, bytes_resident);
    case 2:
      return offsetof(hak_stats, bytes_purged);
    case 3:
      return offsetof(hak_stats, memory_limit_bytes);
    case 4:
      return sizeof(hak_stats);
  }
  return 0;
}

// Resident bytes of everything hakmem mapped: the granules the registry
// marks (chunks, large mappings live or cached), the heap pages and the
// registry table.
uint64_t hakmem_resident_bytes() {
  uint64_t bytes = g_registry.table_resident_bytes() + g_process.heaps.resident_bytes();
  g_registry.for_each_marked([&bytes](uintptr_t granule, GranuleKind) {
    bytes += os::resident_bytes_in(reinterpret_cast<void*>(granule), kChunkSize);
  });
  return bytes;
}

int fill_stats(struct hak_stats* out) {
  // The caller's own pending remote frees reach their slabs' remote lists,
  // so that its view of live blocks does not include them. Other threads'
  // pending frees still count as live until those threads flush.
  if (t_heap != nullptr) flush_remote_frees(t_heap);
  memset(out, 0, sizeof(*out));
  out->version = HAK_STATS_VERSION;
  out->num_classes = kNumClasses;
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    const ClassHead& head = g_process.slabs.head(cls);
    hak_class_stats& cs = out->classes[cls];
    cs.block_size = class_to_size(cls);
    cs.chunks = head.chunks.count();
    cs.adoptions = head.adoptions.load(MemoryOrder::relaxed);
    cs.remote_frees = head.remote_frees_of_exited_threads.load(MemoryOrder::relaxed);
    for (Chunk* c = head.chunks.first(); c != nullptr; c = head.chunks.next(c)) {
      const uint32_t free_bits = c->free_slabs.snapshot();
      for (unsigned i = 0; i < kSlabsPerChunk; ++i) {
        if ((free_bits >> i) & 1) continue;
        const Slab& s = c->slabs[i];
        if (s.state.load(MemoryOrder::relaxed) == kSlabFree) continue;
        ++cs.slabs_in_use;
        // int32: a current slab's own count may be below zero (its heap
        // holds the rest, added below).
        cs.live_blocks += uint64_t(int64_t(int32_t(s.used_count())));
      }
    }
  }
  g_process.heaps.for_each_live([out](ThreadHeap* h) {
    for (unsigned cls = 0; cls < kNumClasses; ++cls) {
      out->classes[cls].remote_frees += h->remote_frees[cls].load(MemoryOrder::relaxed);
      // A current slab's used count is its slab's plus the heap's delta.
      out->classes[cls].live_blocks += h->hot[cls].taken.load(MemoryOrder::relaxed);
    }
  });
  out->bytes_mapped = g_process.slabs.mapped_bytes() + g_process.large.mapped_bytes();
  out->bytes_dirty_free = g_process.slabs.dirty_bytes();
  out->large_live_blocks = g_process.large.live_count();
  out->large_live_bytes = g_process.large.live_bytes();
  out->large_cached_bytes = g_process.large.cached_bytes();
  out->process_resident_bytes = os::process_resident_bytes();
  out->threads_started = g_process.threads_started.load(MemoryOrder::relaxed);
  out->threads_exited = g_process.threads_exited.load(MemoryOrder::relaxed);
  out->bytes_resident = hakmem_resident_bytes();
  out->bytes_purged = g_process.slabs.purged_bytes() + g_process.large.purged_bytes();
  out->large_cached_blocks = g_process.large.cached_count();
  out->large_unmapped_bytes = g_process.large.unmapped_bytes();
  const MemoryLimit& limit = g_process.limit;
  out->memory_limit_bytes = limit.limit_bytes();
  out->memory_limit_source = uint32_t(limit.source());
  out->memory_pressure = limit.in_pressure() ? 1 : 0;
  out->memory_usage_bytes = limit.last_usage();
  out->pressure_episodes = limit.episodes();
  out->pressure_purged_bytes = limit.purged_bytes();
  out->collected_bytes = g_process.collected_bytes.load(MemoryOrder::relaxed);
  return 0;
}

}  // namespace

extern "C" int hak_get_stats(struct hak_stats* out) {
  if (out == nullptr) return -1;
  const uint32_t version = out->version;
  const size_t size = stats_size_of_version(version);
  if (size == 0) return -1;
  hak_stats full;
  fill_stats(&full);
  full.version = version;
  memcpy(out, &full, size);
  return 0;
}

extern "C" void hak_print_stats(int fd) {
  hak_stats st;
  st.version = HAK_STATS_VERSION;
  if (hak_get_stats(&st) != 0) return;
  os::Line().str("hakmem statistics\n").write_to(fd);
  os::Line()
      .str("class  block_size  chunks  slabs_in_use  live_blocks  remote_frees  adoptions\n")
      .write_to(fd);
  for (unsigned cls = 0; cls < st.num_classes; ++cls) {
    const hak_class_stats& c = st.classes[cls];
    if (c.chunks == 0) continue;
    os::Line()
        .u64(cls)
        .str("  ")
        .u64(c.block_size)
        .str("  ")
        .u64(c.chunks)
        .str("  ")
        .u64(c.slabs_in_use)
        .str("  ")
        .u64(c.live_blocks)
        .str("  ")
        .u64(c.remote_frees)
        .str("  ")
        .u64(c.adoptions)
        .ch('\n')
        .write_to(fd);
  }
  os::Line()
      .str("bytes mapped ")
      .u64(st.bytes_mapped)
      .str(", free slabs resident ")
      .u64(st.bytes_dirty_free)
      .str(", large live ")
      .u64(st.large_live_blocks)
      .str(" blocks / ")
      .u64(st.large_live_bytes)
      .str(" bytes, large cached ")
      .u64(st.large_cached_bytes)
      .str(" bytes, purged ")
      .u64(st.bytes_purged)
      .str(" bytes, resident ")
      .u64(st.bytes_resident)
      .str(" of the process's ")
      .u64(st.process_resident_bytes)
      .str(", threads ")
      .u64(st.threads_started)
      .str(" started / ")
      .u64(st.threads_exited)
      .str(" exited\n")
      .write_to(fd);
  os::Line()
      .str("memory limit ")
      .u64(st.memory_limit_bytes)
      .str(" bytes (")
      .str(limit_source_name(LimitSource(st.memory_limit_source)))
      .str("), usage ")
      .u64(st.memory_usage_bytes)
      .str(st.memory_pressure ? ", under pressure" : "")
      .str(", pressure episodes ")
      .u64(st.pressure_episodes)
      .str(", purged under pressure ")
      .u64(st.pressure_purged_bytes)
      .str(" bytes, collected ")
      .u64(st.collected_bytes)
      .str(" bytes\n")
      .write_to(fd);
}

extern "C" void hak_print_stats_json(int fd) {
  hak_stats st;
  st.version = HAK_STATS_VERSION;
  if (hak_get_stats(&st) != 0) return;
  const Config& cfg = g_process.config;
  JsonWriter w(fd);
  w.begin_object();
  w.field("schema", "hakmem-stats");
  w.field("schema_version", HAK_STATS_JSON_SCHEMA);
  w.field("hakmem_version", HAKMEM_VERSION_STRING);
  w.field("pid", uint64_t(getpid()));
  w.key("options").begin_object();
  w.field("mem_diet", cfg.mem_diet);
  w.field("dirty_limit_bytes", cfg.dirty_limit);
  w.field("large_cache_limit_bytes", cfg.large_cache_limit);
  w.field("on_error", cfg.on_error == OnError::kContinue ? "continue" : "abort");
  w.end_object();
  w.key("classes").begin_array();
  for (unsigned cls = 0; cls < st.num_classes; ++cls) {
    const hak_class_stats& c = st.classes[cls];
    w.begin_object();
    w.field("class", cls);
    w.field("block_size", c.block_size);
    w.field("chunks", c.chunks);
    w.field("slabs_in_use", c.slabs_in_use);
    w.field("live_blocks", c.live_blocks);
    w.field("remote_frees", c.remote_frees);
    w.field("adoptions", c.adoptions);
    w.end_object();
  }
  w.end_array();
  w.key("memory").begin_object();
  w.field("mapped_bytes", st.bytes_mapped);
  w.field("resident_bytes", st.bytes_resident);
  w.field("process_resident_bytes", st.process_resident_bytes);
  w.field("dirty_bytes", st.bytes_dirty_free);
  w.field("purged_bytes", st.bytes_purged);
  w.field("collected_bytes", st.collected_bytes);
  w.end_object();
  w.key("memory_limit").begin_object();
  w.field("limit_bytes", st.memory_limit_bytes);
  w.field("source", limit_source_name(LimitSource(st.memory_limit_source)));
  w.field("usage_bytes", st.memory_usage_bytes);
  w.field("in_pressure", uint64_t(st.memory_pressure));
  w.field("pressure_episodes", st.pressure_episodes);
  w.field("pressure_purged_bytes", st.pressure_purged_bytes);
  w.end_object();
  w.key("large").begin_object();
  w.field("live_blocks", st.large_live_blocks);
  w.field("live_bytes", st.large_live_bytes);
  w.field("unmapped_bytes", st.large_unmapped_bytes);
  w.key("cache").begin_object();
  w.field("blocks", st.large_cached_blocks);
  w.field("bytes", st.large_cached_bytes);
  w.field("limit_bytes", g_process.large.cache_limit());
  w.field("slots", LargeCache::kSlots);
  w.end_object();
  w.end_object();
  w.key("threads").begin_object();
  w.field("started", st.threads_started);
  w.field("exited", st.threads_exited);
  w.field("live", st.threads_started - st.threads_exited);
  w.end_object();
  w.end_object();
  w.raw('\n');
  w.flush();
}

extern "C" const char* hak_version(void) { return HAKMEM_VERSION_STRING; }

namespace {

// HAKMEM_STATS_FILE with "%p" replaced by the process id, opened for
// writing; -1 if it cannot be.
int open_stats_file(const char* pattern) {
  char path[Config::kMaxPath];
  size_t n = 0;
  for (const char* s = pattern; *s && n + 1 < sizeof(path); ++s) {
    if (s[0] == '%' && s[1] == 'p') {
      os::Line pid;
      pid.u64(uint64_t(getpid()));
      for (size_t i = 0; i < pid.size() && n + 1 < sizeof(path); ++i) path[n++] = pid.data()[i];
      ++s;
    } else {
      path[n++] = *s;
    }
  }
  path[n] = 0;
  return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

__attribute__((destructor)) void print_stats_at_exit() {
  if (!g_process.ready() || !g_process.config.stats) return;
  const Config& cfg = g_process.config;
  int fd = 2;
  if (cfg.stats_file[0]) {
    fd = open_stats_file(cfg.stats_file);
    if (fd < 0) {
      os::Line()
          .str("hakmem: cannot open HAKMEM_STATS_FILE ")
          .str(cfg.stats_file)
          .str("; statistics go to stderr\n")
          .write_to(2);
      fd = 2;
    }
  }
  if (cfg.stats_json) {
    hak_print_stats_json(fd);
  } else {
    hak_print_stats(fd);
  }
  if (fd != 2) close(fd);
}

}  // namespace
