// The cgroup memory-limit reader (platform/cgroup.h) over fake files: a
// temporary directory holds a /proc/self/cgroup, a mountinfo file and the
// cgroup directories those name (below CgroupFiles::root).
#include "platform/cgroup.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace {

using hakmem::platform::CgroupFiles;
using hakmem::platform::CgroupLimit;
using hakmem::platform::CgroupVersion;
using hakmem::platform::parse_cgroup_limit;
using hakmem::platform::read_cgroup_limit;
using hakmem::platform::read_cgroup_usage;

constexpr uint64_t kMiB = uint64_t{1} << 20;

// A hybrid host as seen here: v1 controllers, cgroup2 at .../unified.
constexpr const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

constexpr const char* kV2Mountinfo =
    "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hakmem_cgroup_testXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    proc_cgroup_ = dir_ + "/proc_self_cgroup";
    mountinfo_ = dir_ + "/proc_self_mountinfo";
  }
  void TearDown() override {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    EXPECT_EQ(system(cmd.c_str()), 0);
  }

  // Writes `text` to root-relative `path`, creating its directories.
  void write(const std::string& path, const std::string& text) {
    const std::string full = path[0] == '/' && path.rfind(dir_, 0) != 0 ? dir_ + path : path;
    for (size_t i = dir_.size() + 1; i < full.size(); ++i) {
      if (full[i] == '/') mkdir(full.substr(0, i).c_str(), 0755);
    }
    FILE* f = fopen(full.c_str(), "w");
    ASSERT_NE(f, nullptr) << full;
    fputs(text.c_str(), f);
    fclose(f);
  }

  CgroupLimit read() {
    CgroupFiles files;
    files.proc_cgroup = proc_cgroup_.c_str();
    files.mountinfo = mountinfo_.c_str();
    files.root = dir_.c_str();
    CgroupLimit limit;
    read_cgroup_limit(files, &limit);
    return limit;
  }

  std::string dir_, proc_cgroup_, mountinfo_;
};

TEST(CgroupParse, LimitValues) {
  uint64_t v = 0;
  EXPECT_TRUE(parse_cgroup_limit("335544320\n", &v));
  EXPECT_EQ(v, 320 * kMiB);
  EXPECT_FALSE(parse_cgroup_limit("max\n", &v)) << "v2: no limit";
  EXPECT_FALSE(parse_cgroup_limit("9223372036854771712\n", &v)) << "v1: LONG_MAX rounded to a page";
  EXPECT_FALSE(parse_cgroup_limit("4611686018427387904\n", &v)) << "2^62 and above: no limit";
  EXPECT_TRUE(parse_cgroup_limit("4611686018427387903\n", &v));
  EXPECT_FALSE(parse_cgroup_limit("0\n", &v));
  EXPECT_FALSE(parse_cgroup_limit("", &v));
  EXPECT_FALSE(parse_cgroup_limit("12abc", &v));
  EXPECT_FALSE(parse_cgroup_limit("99999999999999999999999", &v)) << "overflow";
}

TEST_F(CgroupTest, V2NestedSmallestAlongThePath) {
  write(proc_cgroup_, "0::/a/b/c\n");
  write(mountinfo_, kV2Mountinfo);
  write("/sys/fs/cgroup/a/memory.max", "1073741824\n");
  write("/sys/fs/cgroup/a/memory.current", "1000\n");
  write("/sys/fs/cgroup/a/b/memory.max", "268435456\n");  // the smallest
  write("/sys/fs/cgroup/a/b/memory.current", "4096\n");
  write("/sys/fs/cgroup/a/b/c/memory.max", "max\n");
  write("/sys/fs/cgroup/a/b/c/memory.current", "2048\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV2);
  EXPECT_EQ(l.limit_bytes, 256 * kMiB);
  EXPECT_EQ(std::string(l.usage_path), dir_ + "/sys/fs/cgroup/a/b/memory.current");
  EXPECT_EQ(std::string(l.group_dir), dir_ + "/sys/fs/cgroup/a/b");
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 4096u);
}

TEST_F(CgroupTest, V2LeafLimitAndRootMount) {
  write(proc_cgroup_, "0::/svc\n");
  write(mountinfo_, kV2Mountinfo);
  write("/sys/fs/cgroup/svc/memory.max", "104857600\n");
  write("/sys/fs/cgroup/svc/memory.current", "123\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV2);
  EXPECT_EQ(l.limit_bytes, 100 * kMiB);
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 123u);
}

TEST_F(CgroupTest, V2MaxEverywhereIsNoLimit) {
  write(proc_cgroup_, "0::/a\n");
  write(mountinfo_, kV2Mountinfo);
  write("/sys/fs/cgroup/a/memory.max", "max\n");
  write("/sys/fs/cgroup/a/memory.current", "5\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kNone);
  EXPECT_EQ(l.limit_bytes, 0u);
  EXPECT_EQ(l.usage_path[0], 0);
}

TEST_F(CgroupTest, V2InANamespaceSeesItsGroupAsTheRoot) {
  // Inside a cgroup namespace the group is "/" and the mount's root is "/".
  write(proc_cgroup_, "0::/\n");
  write(mountinfo_, kV2Mountinfo);
  write("/sys/fs/cgroup/memory.max", "67108864\n");
  write("/sys/fs/cgroup/memory.current", "77\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV2);
  EXPECT_EQ(l.limit_bytes, 64 * kMiB);
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 77u);
}

TEST_F(CgroupTest, MountOfASubtreeStripsItsRoot) {
  // The mount shows the hierarchy's /kube/pod1 at /sys/fs/cgroup.
  write(proc_cgroup_, "0::/kube/pod1/ctr\n");
  write(mountinfo_, "30 22 0:26 /kube/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  write("/sys/fs/cgroup/ctr/memory.max", "33554432\n");
  write("/sys/fs/cgroup/ctr/memory.current", "1\n");
  write("/sys/fs/cgroup/memory.max", "16777216\n");  // the pod's: smaller
  write("/sys/fs/cgroup/memory.current", "2\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.limit_bytes, 16 * kMiB);
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 2u);
}

TEST_F(CgroupTest, V1MemoryControllerOnAHybridHost) {
  write(proc_cgroup_, "9:systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n");
  write(mountinfo_, kHybridMountinfo);
  // cgroup2 here has no memory controller files.
  write("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
  write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  write("/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "9223372036854771712\n");
  write("/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes", "335544320\n");
  write("/sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes", "3874816\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV1);
  EXPECT_EQ(l.limit_bytes, 320 * kMiB);
  EXPECT_EQ(std::string(l.usage_path),
            dir_ + "/sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes");
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 3874816u);
}

TEST_F(CgroupTest, V1HugeValueEverywhereIsNoLimit) {
  write(proc_cgroup_, "4:memory:/a/b\n0::/\n");
  write(mountinfo_, kHybridMountinfo);
  write("/sys/fs/cgroup/memory/a/memory.limit_in_bytes", "9223372036854771712\n");
  write("/sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
  EXPECT_EQ(read().version, CgroupVersion::kNone);
}

TEST_F(CgroupTest, V1ParentLimitBindsTheChild) {
  write(proc_cgroup_, "4:memory:/a/b\n");
  write(mountinfo_, kHybridMountinfo);
  write("/sys/fs/cgroup/memory/a/memory.limit_in_bytes", "52428800\n");
  write("/sys/fs/cgroup/memory/a/memory.usage_in_bytes", "11\n");
  write("/sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "104857600\n");
  write("/sys/fs/cgroup/memory/a/b/memory.usage_in_bytes", "10\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV1);
  EXPECT_EQ(l.limit_bytes, 50 * kMiB);
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 11u);
}

TEST_F(CgroupTest, V2LimitWinsOverV1) {
  write(proc_cgroup_, "4:memory:/x\n0::/y\n");
  write(mountinfo_,
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
  write("/sys/fs/cgroup/memory/x/memory.limit_in_bytes", "52428800\n");
  write("/sys/fs/cgroup/unified/y/memory.max", "104857600\n");
  write("/sys/fs/cgroup/unified/y/memory.current", "1\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV2);
  EXPECT_EQ(l.limit_bytes, 100 * kMiB);
}

TEST_F(CgroupTest, EscapedMountPoint) {
  write(proc_cgroup_, "0::/g\n");
  write(mountinfo_, "30 22 0:26 / /mnt/cg\\040two rw - cgroup2 none rw\n");
  write("/mnt/cg two/g/memory.max", "20971520\n");
  write("/mnt/cg two/g/memory.current", "9\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.limit_bytes, 20 * kMiB);
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 9u);
}

TEST_F(CgroupTest, MissingFiles) {
  // No /proc/self/cgroup.
  EXPECT_EQ(read().version, CgroupVersion::kNone);
  // A group but no mountinfo.
  write(proc_cgroup_, "0::/a\n4:memory:/a\n");
  EXPECT_EQ(read().version, CgroupVersion::kNone);
  // Mounts, but no limit files.
  write(mountinfo_, kHybridMountinfo);
  EXPECT_EQ(read().version, CgroupVersion::kNone);
  // A limit without a usage file: found; its usage reads as 0.
  write("/sys/fs/cgroup/memory/a/memory.limit_in_bytes", "10485760\n");
  const CgroupLimit l = read();
  EXPECT_EQ(l.version, CgroupVersion::kV1);
  EXPECT_EQ(read_cgroup_usage(l.usage_path), 0u);
  EXPECT_EQ(read_cgroup_usage(""), 0u);
  EXPECT_EQ(read_cgroup_usage("/nonexistent/memory.current"), 0u);
}

TEST(CgroupReal, ReadsThisMachineWithoutFailing) {
  CgroupLimit l;
  read_cgroup_limit(CgroupFiles{}, &l);
  if (l.version != CgroupVersion::kNone) {
    EXPECT_GT(l.limit_bytes, 0u);
    EXPECT_GT(read_cgroup_usage(l.usage_path), 0u);
  }
}

}  // namespace
