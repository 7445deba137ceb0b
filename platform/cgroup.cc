#include "platform/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace hakmem::platform {
namespace {

constexpr size_t kLineMax = 2048;
// cgroup v1 reports "no limit" as LONG_MAX rounded down to a page; anything
// from 2^62 on is taken as that.
constexpr uint64_t kUnlimited = uint64_t{1} << 62;

size_t length(const char* s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}

bool equal(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// Appends `s` to the NUL-terminated `buf` (capacity kCgroupPathMax); false
// if it does not fit (buf is then unchanged).
bool append(char* buf, const char* s) {
  const size_t n = length(buf), m = length(s);
  if (n + m + 1 > kCgroupPathMax) return false;
  for (size_t i = 0; i <= m; ++i) buf[n + i] = s[i];
  return true;
}

bool copy(char* buf, const char* s) {
  buf[0] = 0;
  return append(buf, s);
}

// Calls f(line) for each line of the file (NUL-terminated, without its
// newline). Lines longer than kLineMax are skipped. False if the file
// cannot be opened.
template <class F>
bool for_each_line(const char* path, F&& f) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char chunk[1024];
  char line[kLineMax];
  size_t len = 0;
  bool overflow = false;
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (chunk[i] == '\n') {
        line[len] = 0;
        if (!overflow) f(line);
        len = 0;
        overflow = false;
      } else if (len + 1 < sizeof(line)) {
        line[len++] = chunk[i];
      } else {
        overflow = true;
      }
    }
  }
  if (len > 0 && !overflow) {
    line[len] = 0;
    f(line);
  }
  close(fd);
  return true;
}

// Reads a small file into buf (NUL-terminated); false if it cannot be read.
bool read_small_file(const char* path, char* buf, size_t size) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n;
  do {
    n = read(fd, buf, size - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  return true;
}

bool parse_decimal(const char* s, uint64_t* out) {
  if (*s < '0' || *s > '9') return false;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; ++s) {
    const uint64_t d = uint64_t(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (*s != 0 && *s != '\n' && *s != ' ') return false;
  *out = v;
  return true;
}

// Whether the comma-separated list `list` (up to `end`, or its NUL) holds
// `word`.
bool list_has(const char* list, const char* end, const char* word) {
  const size_t w = length(word);
  const char* p = list;
  while (p < end && *p) {
    const char* q = p;
    while (q < end && *q && *q != ',') ++q;
    if (size_t(q - p) == w) {
      bool same = true;
      for (size_t i = 0; i < w; ++i) same = same && p[i] == word[i];
      if (same) return true;
    }
    if (q >= end || *q != ',') break;
    p = q + 1;
  }
  return false;
}

// The group path of the process in hierarchy `version` from a
// /proc/self/cgroup line ("id:controllers:path"), into out.
bool group_of_line(const char* line, CgroupVersion version, char* out) {
  const char* c1 = line;
  while (*c1 && *c1 != ':') ++c1;
  if (*c1 != ':') return false;
  const char* controllers = c1 + 1;
  const char* c2 = controllers;
  while (*c2 && *c2 != ':') ++c2;
  if (*c2 != ':') return false;
  const char* path = c2 + 1;
  if (*path != '/') return false;
  if (version == CgroupVersion::kV2) {
    if (!(c1 - line == 1 && line[0] == '0' && c2 == controllers)) return false;
  } else if (!list_has(controllers, c2, "memory")) {
    return false;
  }
  return copy(out, path);
}

// Decodes mountinfo's octal escapes (\040 for a space, ...) in place.
void unescape(char* s) {
  char* w = s;
  for (const char* r = s; *r;) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
        r[3] <= '7') {
      *w++ = char((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
      r += 4;
    } else {
      *w++ = *r++;
    }
  }
  *w = 0;
}

struct Mount {
  bool found = false;
  char root[kCgroupPathMax] = {};   // the hierarchy's directory the mount shows
  char point[kCgroupPathMax] = {};  // where it is mounted
};

// A mountinfo line: "id parent major:minor root point options [optional...]
// - fstype source superoptions". Fills m if it is the hierarchy of
// `version` (for v1, the one holding the memory controller).
void mount_of_line(char* line, CgroupVersion version, Mount* m) {
  if (m->found) return;
  char* field[6] = {};
  unsigned n = 0;
  char* p = line;
  // The first five fields, then find " - ".
  while (n < 5 && *p) {
    while (*p == ' ') ++p;
    field[n++] = p;
    while (*p && *p != ' ') ++p;
    if (*p) *p++ = 0;
  }
  if (n < 5) return;
  // Skip the options and the optional fields up to the separator "-".
  char* sep = nullptr;
  while (*p) {
    while (*p == ' ') ++p;
    char* f = p;
    while (*p && *p != ' ') ++p;
    if (*p) *p++ = 0;
    if (f[0] == '-' && f[1] == 0) {
      sep = p;
      break;
    }
  }
  if (sep == nullptr) return;
  char* fstype = sep;
  while (*fstype == ' ') ++fstype;
  char* q = fstype;
  while (*q && *q != ' ') ++q;
  if (*q) *q++ = 0;
  while (*q == ' ') ++q;
  while (*q && *q != ' ') ++q;  // source
  while (*q == ' ') ++q;
  const char* super = q;
  if (version == CgroupVersion::kV2) {
    if (!equal(fstype, "cgroup2")) return;
  } else {
    if (!equal(fstype, "cgroup")) return;
    const char* end = super;
    while (*end && *end != ' ') ++end;
    if (!list_has(super, end, "memory")) return;
  }
  unescape(field[3]);
  unescape(field[4]);
  if (!copy(m->root, field[3]) || !copy(m->point, field[4])) return;
  m->found = true;
}

// The directory of `group` under the mount: root prefix + mount point +
// the group's path below the mount's root. False if the group is not below
// that root or the path is too long.
bool group_directory(const CgroupFiles& files, const Mount& m, const char* group, char* dir,
                     size_t* mount_len) {
  const size_t r = length(m.root);
  const char* rest = group;
  if (!(r == 1 && m.root[0] == '/')) {
    for (size_t i = 0; i < r; ++i) {
      if (group[i] != m.root[i]) return false;
    }
    if (group[r] != 0 && group[r] != '/') return false;
    rest = group + r;
  }
  if (!copy(dir, files.root) || !append(dir, m.point)) return false;
  // Without a trailing slash: the walk stops at this length.
  size_t n = length(dir);
  while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
  *mount_len = n;
  if (!(rest[0] == '/' && rest[1] == 0) && rest[0] != 0 && !append(dir, rest)) return false;
  n = length(dir);
  while (n > *mount_len && dir[n - 1] == '/') dir[--n] = 0;
  return true;
}

// Walks from `dir` up to the mount's directory, keeping the smallest limit.
void smallest_limit(char* dir, size_t mount_len, CgroupVersion version, CgroupLimit* out) {
  const char* limit_name = version == CgroupVersion::kV2 ? "/memory.max" : "/memory.limit_in_bytes";
  const char* usage_name =
      version == CgroupVersion::kV2 ? "/memory.current" : "/memory.usage_in_bytes";
  for (;;) {
    char path[kCgroupPathMax];
    char text[64];
    uint64_t limit = 0;
    if (copy(path, dir) && append(path, limit_name) && read_small_file(path, text, sizeof(text)) &&
        parse_cgroup_limit(text, &limit) && (out->limit_bytes == 0 || limit < out->limit_bytes)) {
      char usage[kCgroupPathMax];
      if (copy(usage, dir) && append(usage, usage_name)) {
        out->limit_bytes = limit;
        out->version = version;
        copy(out->usage_path, usage);
        copy(out->group_dir, dir);
      }
    }
    size_t n = length(dir);
    if (n <= mount_len) return;
    while (n > mount_len && dir[n - 1] != '/') --n;
    if (n > mount_len) --n;  // the slash
    dir[n] = 0;
  }
}

void find_limit(const CgroupFiles& files, CgroupVersion version, CgroupLimit* out) {
  char group[kCgroupPathMax] = {};
  bool have_group = false;
  for_each_line(files.proc_cgroup, [&](char* line) {
    if (!have_group) have_group = group_of_line(line, version, group);
  });
  if (!have_group) return;
  Mount m;
  for_each_line(files.mountinfo, [&](char* line) { mount_of_line(line, version, &m); });
  if (!m.found) return;
  char dir[kCgroupPathMax];
  size_t mount_len = 0;
  if (!group_directory(files, m, group, dir, &mount_len)) return;
  smallest_limit(dir, mount_len, version, out);
}

}  // namespace

bool parse_cgroup_limit(const char* text, uint64_t* bytes) noexcept {
  uint64_t v = 0;
  if (!parse_decimal(text, &v)) return false;  // "max" too
  if (v == 0 || v >= kUnlimited) return false;
  *bytes = v;
  return true;
}

void read_cgroup_limit(const CgroupFiles& files, CgroupLimit* out) noexcept {
  const int saved = errno;
  *out = CgroupLimit{};
  find_limit(files, CgroupVersion::kV2, out);
  if (out->version == CgroupVersion::kNone) find_limit(files, CgroupVersion::kV1, out);
  errno = saved;
}

uint64_t read_cgroup_usage(const char* path) noexcept {
  const int saved = errno;
  char text[64];
  uint64_t v = 0;
  if (!(path[0] != 0 && read_small_file(path, text, sizeof(text)) && parse_decimal(text, &v)))
    v = 0;
  errno = saved;
  return v;
}

}  // namespace hakmem::platform
