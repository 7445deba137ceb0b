// The memory limit end to end (core/limit/memory_limit.h): a child cgroup
// with a 320 MiB limit, a child process moved into it that allocates about
// 290 MiB (large blocks, then small and medium ones), frees it all with
// budgets that would keep it resident (HAKMEM_DIRTY_MB and
// HAKMEM_LARGE_CACHE_MB of 512), idles past a check interval and makes
// one more large allocation (the check that follows). The child reports
// hakmem's statistics; the test checks the limit and its source were
// read, a pressure episode happened and bytes were purged under it, and
// what hakmem retains is bounded by the policy; a control run of the same
// child in the same cgroup with HAKMEM_MEMORY_LIMIT_MB=0 (limit ignored)
// retains what it freed, so the checks can fail.
//
// The allocation stops once the cgroup's usage reaches the limit minus
// half a headroom, so that the control, which returns nothing, never
// reaches the kernel's limit (that would kill it) whatever the build adds
// to the usage (a sanitizer's shadow memory). What is checked is hakmem's
// own accounting (retained = free slab pages kept + cached large bytes),
// which means the same in every build.
//
// The cgroup: cgroup v2 if the process's group there lets children have the
// memory controller (its cgroup.subtree_control lists "memory"), else the
// v1 memory controller. Without a writable hierarchy (not root, read-only
// mount) the test says why and skips.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "api/hakmem.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::stats;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kLimit = 320 * kMiB;
// The policy's headroom for this limit: max(limit / 8, 16 MiB).
constexpr uint64_t kHeadroom = kLimit / 8;
constexpr uint64_t kLargeTotal = 190 * kMiB;
constexpr uint64_t kSmallTotal = 100 * kMiB;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool write_file(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size());
  close(fd);
  return ok;
}

uint64_t read_number(const char* path) {
  char buf[64] = {};
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? strtoull(buf, nullptr, 10) : 0;
}

// ---- The child --------------------------------------------------------

uint64_t next_random(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

// Joins the cgroup (HAKMEM_TEST_CGROUP_PROCS) before hakmem's first call,
// so that hakmem reads this group's limit and every page it touches is
// charged here.
HAKMEM_CHILD(limit_workload) {
  const char* procs = getenv("HAKMEM_TEST_CGROUP_PROCS");
  const char* usage_file = getenv("HAKMEM_TEST_CGROUP_USAGE");
  CHILD_CHECK(procs != nullptr && usage_file != nullptr);
  CHILD_CHECK(write_file(procs, std::to_string(getpid()) + "\n"));
  const uint64_t stop_at = kLimit - kHeadroom / 2;
  std::vector<void*> large, small;
  large.reserve(1024);
  small.reserve(1 << 20);
  uint64_t seed = 0x9e3779b97f4a7c15ull, bytes = 0, since_read = 0, peak_usage = 0;
  auto usage_reached = [&](uint64_t size) {
    bytes += size;
    since_read += size;
    if (since_read < 4 * kMiB) return false;
    since_read = 0;
    const uint64_t u = read_number(usage_file);
    if (u > peak_usage) peak_usage = u;
    return u >= stop_at;
  };
  bool full = false;
  // Large blocks of 1.5 to 7.5 MiB (few enough for the cache's 64 slots).
  for (uint64_t done = 0; done < kLargeTotal && !full;) {
    const size_t size = size_t(3 * kMiB / 2 + next_random(&seed) % (6 * kMiB));
    void* p = hak_malloc(size);
    CHILD_CHECK(p != nullptr);
    memset(p, 0x5a, size);
    large.push_back(p);
    done += size;
    full = usage_reached(size);
  }
  // Small and medium blocks, 64 B to 256 KiB.
  static const size_t kSizes[] = {64, 256, 1024, 4096, 16384, 65536, 262144};
  for (uint64_t done = 0; done < kSmallTotal && !full;) {
    const size_t size = kSizes[next_random(&seed) % 7];
    void* p = hak_malloc(size);
    CHILD_CHECK(p != nullptr);
    memset(p, 0xa5, size);
    small.push_back(p);
    done += size;
    full = usage_reached(size);
  }
  const hak_stats peak = stats();
  for (void* p : large) hak_free(p);
  for (void* p : small) hak_free(p);
  const hak_stats freed = stats();
  // Past a check interval (250 ms) the next allocator activity runs a check.
  hakmem_test::sleep_ms(400);
  hak_free(hak_malloc(2 * kMiB));
  const hak_stats end = stats();
  printf(
      "allocated=%llu peak_usage=%llu peak_resident=%llu retained_after_free=%llu "
      "limit=%llu source=%u episodes=%llu pressure_purged=%llu usage=%llu in_pressure=%u "
      "retained=%llu resident=%llu\n",
      (unsigned long long)bytes, (unsigned long long)peak_usage,
      (unsigned long long)peak.bytes_resident,
      (unsigned long long)(freed.bytes_dirty_free + freed.large_cached_bytes),
      (unsigned long long)end.memory_limit_bytes, end.memory_limit_source,
      (unsigned long long)end.pressure_episodes, (unsigned long long)end.pressure_purged_bytes,
      (unsigned long long)end.memory_usage_bytes, end.memory_pressure,
      (unsigned long long)(end.bytes_dirty_free + end.large_cached_bytes),
      (unsigned long long)end.bytes_resident);
  fflush(stdout);
  return 0;
}

// ---- The test ---------------------------------------------------------

// The process's group in a hierarchy, and the hierarchy's mount point.
struct Hierarchy {
  std::string dir;  // the process's group directory
  int version = 0;
};

std::string group_path(bool v2) {
  std::istringstream in(read_file("/proc/self/cgroup"));
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    if (v2 ? line.compare(0, 3, "0::") == 0
           : ("," + controllers + ",").find(",memory,") != std::string::npos) {
      return line.substr(b + 1);
    }
  }
  return "";
}

// The mount (root, point) of the hierarchy: fstype cgroup2, or cgroup with
// the memory controller.
bool mount_of(bool v2, std::string* root, std::string* point) {
  std::istringstream in(read_file("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string w; f >> w;) fields.push_back(w);
    size_t sep = 0;
    while (sep < fields.size() && fields[sep] != "-") ++sep;
    if (fields.size() < 5 || sep + 3 >= fields.size() + 1) continue;
    if (sep + 1 >= fields.size()) continue;
    const std::string& type = fields[sep + 1];
    const std::string super = sep + 3 < fields.size() ? "," + fields[sep + 3] + "," : "";
    if (v2 ? type == "cgroup2" : type == "cgroup" && super.find(",memory,") != std::string::npos) {
      *root = fields[3];
      *point = fields[4];
      return true;
    }
  }
  return false;
}

Hierarchy find_hierarchy(bool v2) {
  Hierarchy h;
  std::string root, point;
  const std::string group = group_path(v2);
  if (group.empty() || !mount_of(v2, &root, &point)) return h;
  std::string rest = group;
  if (root != "/") {
    if (group.compare(0, root.size(), root) != 0) return h;
    rest = group.substr(root.size());
  }
  h.dir = point + (rest == "/" ? "" : rest);
  h.version = v2 ? 2 : 1;
  return h;
}

std::map<std::string, uint64_t> parse_report(const std::string& out) {
  std::map<std::string, uint64_t> m;
  std::istringstream in(out);
  for (std::string w; in >> w;) {
    const size_t eq = w.find('=');
    if (eq != std::string::npos) m[w.substr(0, eq)] = strtoull(w.c_str() + eq + 1, nullptr, 10);
  }
  return m;
}

class MemoryLimitTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (child_.empty()) return;
    // The child process has exited: the group is empty and can go.
    for (int i = 0; i < 50 && rmdir(child_.c_str()) != 0; ++i) hakmem_test::sleep_ms(20);
    struct stat st;
    EXPECT_NE(stat(child_.c_str(), &st), 0)
        << "could not remove " << child_ << ": " << strerror(errno);
  }

  // Creates the child group with kLimit; a reason on failure.
  std::string make_group() {
    Hierarchy v2 = find_hierarchy(true);
    std::string why;
    if (v2.version != 0) {
      const std::string control = read_file(v2.dir + "/cgroup.subtree_control");
      if (control.find("memory") != std::string::npos) {
        const std::string dir = v2.dir + "/hakmem_limit_test_" + std::to_string(getpid());
        if (mkdir(dir.c_str(), 0755) == 0) {
          child_ = dir;
          if (!write_file(dir + "/memory.max", std::to_string(kLimit) + "\n")) {
            return "cannot write " + dir + "/memory.max: " + strerror(errno);
          }
          version_ = 2;
          usage_ = dir + "/memory.current";
          return "";
        }
        why = "cgroup v2: mkdir under " + v2.dir + ": " + strerror(errno) + "; ";
      } else {
        why = "cgroup v2: " + v2.dir +
              " does not delegate the memory controller (subtree_control \"" +
              control.substr(0, control.find('\n')) + "\"); ";
      }
    } else {
      why = "no cgroup v2 hierarchy; ";
    }
    Hierarchy v1 = find_hierarchy(false);
    if (v1.version == 0) return why + "no cgroup v1 memory controller mounted";
    const std::string dir = v1.dir + "/hakmem_limit_test_" + std::to_string(getpid());
    if (mkdir(dir.c_str(), 0755) != 0) {
      return why + "cgroup v1: mkdir under " + v1.dir + ": " + strerror(errno);
    }
    child_ = dir;
    if (!write_file(dir + "/memory.limit_in_bytes", std::to_string(kLimit) + "\n")) {
      return "cannot write " + dir + "/memory.limit_in_bytes: " + strerror(errno);
    }
    version_ = 1;
    usage_ = dir + "/memory.usage_in_bytes";
    return "";
  }

  std::map<std::string, uint64_t> run(const std::vector<std::string>& extra) {
    std::vector<std::string> env = {"HAKMEM_TEST_CGROUP_PROCS=" + child_ + "/cgroup.procs",
                                    "HAKMEM_TEST_CGROUP_USAGE=" + usage_, "HAKMEM_DIRTY_MB=512",
                                    "HAKMEM_LARGE_CACHE_MB=512"};
    env.insert(env.end(), extra.begin(), extra.end());
    const auto r = hakmem_test::run_child("limit_workload", env, 120);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.describe();
    printf("%s %s", extra.empty() ? "limited:" : "control:", r.out.c_str());
    return parse_report(r.out);
  }

  std::string child_, usage_;
  int version_ = 0;
};

TEST_F(MemoryLimitTest, PressureReturnsRetainedMemoryInACgroup) {
  if (geteuid() != 0) {
    printf("memory_limit_test: skipped: not root, no cgroup hierarchy is writable\n");
    GTEST_SKIP() << "not root";
  }
  const std::string why = make_group();
  if (!why.empty()) {
    printf("memory_limit_test: skipped: %s\n", why.c_str());
    GTEST_SKIP() << why;
  }
  printf("memory_limit_test: cgroup v%d group %s, limit %llu\n", version_, child_.c_str(),
         (unsigned long long)kLimit);

  auto limited = run({});
  auto control = run({"HAKMEM_MEMORY_LIMIT_MB=0"});

  // The limit was read from the cgroup.
  EXPECT_EQ(limited["limit"], kLimit);
  EXPECT_EQ(limited["source"],
            unsigned(version_ == 2 ? HAK_LIMIT_SOURCE_CGROUP_V2 : HAK_LIMIT_SOURCE_CGROUP_V1));
  EXPECT_GT(limited["usage"], 0u) << "a check read the usage";
  // The workload reached the pressure threshold (limit - headroom).
  EXPECT_GE(limited["peak_usage"], kLimit - kHeadroom);
  // Pressure happened and returned memory (the check's purge of what the
  // frees kept, or the frees themselves if pressure began before them).
  EXPECT_GE(limited["episodes"], 1u);
  EXPECT_GE(limited["pressure_purged"], 16 * kMiB);
  // What stays retained is bounded: a check that finds usage at or above
  // limit - headroom returns everything, and pressure ends only below
  // limit - 2 * headroom, so retention after the last check is below that.
  EXPECT_LT(limited["retained"], kLimit - 2 * kHeadroom);
  EXPECT_LT(limited["retained"] + kHeadroom, control["retained"]);

  // The control ignored the limit and kept what it freed.
  EXPECT_EQ(control["limit"], 0u);
  EXPECT_EQ(control["source"], unsigned(HAK_LIMIT_SOURCE_NONE));
  EXPECT_EQ(control["episodes"], 0u);
  EXPECT_EQ(control["pressure_purged"], 0u);
  EXPECT_GE(control["retained"], control["allocated"] * 8 / 10)
      << "the budgets keep what was freed";
}

}  // namespace
