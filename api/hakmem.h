/* hakmem: a lock-free, thread-caching memory allocator.
 *
 * The hak_ functions work whether or not hakmem also replaces malloc (link
 * //:hakmem or preload libhakmem.so for that). They follow the semantics of
 * their C standard counterparts. */
#ifndef HAKMEM_HAKMEM_H_
#define HAKMEM_HAKMEM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

void* hak_malloc(size_t size);
void* hak_calloc(size_t count, size_t size);
void* hak_realloc(void* ptr, size_t size);
void* hak_reallocarray(void* ptr, size_t count, size_t size);
/* Any power-of-two alignment; NULL with errno EINVAL for others. */
void* hak_aligned_alloc(size_t alignment, size_t size);
int hak_posix_memalign(void** out, size_t alignment, size_t size);
void hak_free(void* ptr);
/* free() of a block whose requested size the caller knows (sized delete);
 * a size of a different size class is reported as an error. */
void hak_free_sized(void* ptr, size_t size);
size_t hak_usable_size(const void* ptr);

/* Returns nonzero if ptr is the start of a live hakmem block. */
int hak_owns(const void* ptr);

/* Reclaims slabs abandoned by exited threads and releases the empty ones,
 * then returns retained free memory to the OS at once: every free slab's
 * resident pages are decommitted and every cached large range is unmapped,
 * however recently freed. Returns the number of abandoned slabs released;
 * the bytes returned to the OS are added to hak_stats.collected_bytes (and
 * to bytes_purged / large_unmapped_bytes). */
size_t hak_collect(void);

/* Walks hakmem's metadata and checks its invariants. Returns the number of
 * problems found (each also reported on stderr); 0 means consistent. */
size_t hak_check(void);

#define HAK_STATS_VERSION 4
#define HAK_STATS_MAX_CLASSES 64

struct hak_class_stats {
  uint64_t block_size;
  uint64_t chunks;       /* chunks linked in the class's list */
  uint64_t slabs_in_use; /* slabs owned by a thread or abandoned */
  uint64_t live_blocks;  /* blocks handed out and not yet drained back */
  uint64_t remote_frees; /* frees by a thread other than the slab's owner */
  uint64_t adoptions;    /* abandoned slabs taken over by another thread */
};

struct hak_stats {
  uint32_t version;     /* HAK_STATS_VERSION */
  uint32_t num_classes; /* entries used in classes[] */
  struct hak_class_stats classes[HAK_STATS_MAX_CLASSES];
  uint64_t bytes_mapped;         /* address space hakmem holds (chunks, large) */
  uint64_t bytes_dirty_free;     /* free slab pages kept resident for reuse */
  uint64_t large_live_blocks;
  uint64_t large_live_bytes;     /* mapped bytes of live large blocks */
  uint64_t large_cached_bytes;   /* freed large mappings kept for reuse */
  uint64_t process_resident_bytes;
  uint64_t threads_started;
  uint64_t threads_exited;
  /* Since version 2. */
  uint64_t bytes_resident; /* resident bytes of the memory hakmem mapped (chunks,
                              large mappings, its metadata), from mincore: unlike
                              process_resident_bytes it leaves out the rest of the
                              process, such as a sanitizer's shadow memory */
  /* Since version 3. */
  uint64_t bytes_purged;         /* returned to the OS by decommit (madvise) so far:
                                    free slab pages and cached large pages */
  uint64_t large_cached_blocks;  /* freed large mappings in the cache */
  uint64_t large_unmapped_bytes; /* large mappings returned to the OS (munmap) so far */
  /* Since version 4. */
  uint64_t memory_limit_bytes;    /* the limit hakmem keeps within (cgroup or
                                     HAKMEM_MEMORY_LIMIT_MB); 0: none */
  uint32_t memory_limit_source;   /* HAK_LIMIT_SOURCE_* */
  uint32_t memory_pressure;       /* 1 while under the limit's pressure */
  uint64_t memory_usage_bytes;    /* the usage its last check read (0: none yet) */
  uint64_t pressure_episodes;     /* times pressure began, so far */
  uint64_t pressure_purged_bytes; /* returned to the OS under pressure so far: by the
                                     checks' purges and by frees the empty budgets
                                     returned at once */
  uint64_t collected_bytes;       /* returned to the OS by hak_collect so far */
};

/* Values of hak_stats.memory_limit_source. */
#define HAK_LIMIT_SOURCE_NONE 0
#define HAK_LIMIT_SOURCE_CGROUP_V1 1
#define HAK_LIMIT_SOURCE_CGROUP_V2 2
#define HAK_LIMIT_SOURCE_KNOB 3 /* HAKMEM_MEMORY_LIMIT_MB */

/* Fills *out (out->version must be set by the caller to HAK_STATS_VERSION,
 * or to an older version, whose fields alone are then filled). Returns 0, or
 * -1 if the version is not supported. */
int hak_get_stats(struct hak_stats* out);

/* Writes the statistics table to file descriptor fd. */
void hak_print_stats(int fd);

/* Writes the statistics to fd as one JSON object on one line (README,
 * "Statistics as JSON", lists its fields; "schema_version" is
 * HAK_STATS_JSON_SCHEMA). Allocates nothing. */
#define HAK_STATS_JSON_SCHEMA 1
void hak_print_stats_json(int fd);

/* hakmem's version, "MAJOR.MINOR.PATCH" (the library's soname is
 * libhakmem.so.MAJOR). */
const char* hak_version(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_HAKMEM_H_ */
