// Statistics: hak_get_stats, hak_print_stats and HAKMEM_STATS=1 at exit.
// Counters are read relaxed while other threads run, so a snapshot is
// approximate under load and exact once threads are quiescent.
#include <stddef.h>
#include <string.h>

#include "api/hakmem.h"
#include "core/alloc/process.h"
#include "platform/os.h"

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
      return sizeof(hak_stats);
  }
  return 0;
}

// Resident bytes of everything hakmem mapped: the granules the registry
// marks (chunks, large mappings live or cached), the heap pages and the
// registry table.
uint64_t hakmem_resident_bytes() {
  uint64_t bytes = g_process.registry.table_resident_bytes() + g_process.heaps.resident_bytes();
  g_process.registry.for_each_marked([&bytes](uintptr_t granule, GranuleKind) {
    bytes += os::resident_bytes_in(reinterpret_cast<void*>(granule), kChunkSize);
  });
  return bytes;
}

int fill_stats(struct hak_stats* out) {
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
}

namespace {
__attribute__((destructor)) void print_stats_at_exit() {
  if (g_process.ready() && g_process.config.stats) {
    hak_print_stats(2);
  }
}
}  // namespace
