// The memory limit of the control group the process runs in (a container's
// limit), and the group's memory usage.
//
// cgroup v2: the group's path is the "0::/path" line of /proc/self/cgroup,
// the hierarchy is the mount of type cgroup2 in /proc/self/mountinfo, the
// limit is memory.max ("max": none) and the usage memory.current. cgroup v1:
// the line whose controller list holds "memory", the mount of type cgroup
// whose super options hold "memory", memory.limit_in_bytes (a value of
// 2^62 or more, or "max", means none) and memory.usage_in_bytes.
//
// The effective limit is the smallest one set on the path from the
// process's group up to the root of the mount (a parent's limit binds its
// children); the usage read later is that of the group whose limit is the
// smallest, which is the one that reaches its limit first. v2 is used if it
// finds a limit, else v1.
//
// Nothing here allocates (it runs inside the allocator's initialisation):
// raw open/read/close into fixed buffers on the stack. Paths longer than
// kCgroupPathMax are not followed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hakmem::platform {

// Where the reader looks. The defaults are the real files; a test points
// them at fake ones in a temporary directory (`root` is prepended to every
// mount point read from the mountinfo file).
struct CgroupFiles {
  const char* proc_cgroup = "/proc/self/cgroup";
  const char* mountinfo = "/proc/self/mountinfo";
  const char* root = "";
};

enum class CgroupVersion : uint8_t { kNone = 0, kV1 = 1, kV2 = 2 };

inline constexpr size_t kCgroupPathMax = 1024;

struct CgroupLimit {
  CgroupVersion version = CgroupVersion::kNone;  // kNone: no limit found
  uint64_t limit_bytes = 0;                      // 0 when version is kNone
  // The usage file of the group whose limit is the smallest (read it with
  // read_cgroup_usage); empty when version is kNone.
  char usage_path[kCgroupPathMax] = {};
  // The group directory that limit belongs to (for messages).
  char group_dir[kCgroupPathMax] = {};
};

// Finds the process's cgroup memory limit. Never allocates; errno is kept.
void read_cgroup_limit(const CgroupFiles& files, CgroupLimit* out) noexcept;

// The contents of a limit file as a limit: false for "max", for a value of
// 2^62 or more (cgroup v1's "unlimited" is 2^63 rounded down to a page), for
// 0 and for anything unreadable.
bool parse_cgroup_limit(const char* text, uint64_t* bytes) noexcept;

// Reads a usage file (one decimal number): its bytes, or 0 if it cannot be
// read. Never allocates; errno is kept.
uint64_t read_cgroup_usage(const char* path) noexcept;

}  // namespace hakmem::platform
