// hak_print_stats_json and the exit-time statistics options: the output is
// one valid JSON object on one line carrying the README's fields with the
// numbers of hak_get_stats; writing it allocates nothing; HAKMEM_STATS=json,
// HAKMEM_STATS_FILE (with %p) and HAKMEM_VERBOSE=1 in a fresh process.
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "gtest/gtest.h"
#include "tests/support/stats.h"
#include "tests/support/test_util.h"

namespace {

// A minimal JSON value and a strict parser (RFC 8259 minus \u escapes of
// non-ASCII code points, which hakmem never writes).
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double number = 0;
  uint64_t integer = 0;  // numbers hakmem writes are unsigned integers
  std::string str;
  std::vector<Json> items;
  std::map<std::string, Json> members;
  std::vector<std::string> order;  // member names in document order

  const Json& operator[](const std::string& k) const {
    static const Json missing;
    auto it = members.find(k);
    return it == members.end() ? missing : it->second;
  }
  bool has(const std::string& k) const { return members.count(k) != 0; }
};

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}
  bool parse(Json* out) {
    ws();
    if (!value(out)) return false;
    ws();
    return i_ == s_.size();
  }
  std::string error() const { return "at offset " + std::to_string(i_) + ": " + s_.substr(i_, 40); }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool lit(const char* w) {
    const size_t n = strlen(w);
    if (s_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }
  bool string(std::string* out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      const unsigned char c = s_[i_];
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        const char e = s_[i_];
        if (e == 'u') {
          if (i_ + 4 >= s_.size()) return false;
          const unsigned v = std::stoul(s_.substr(i_ + 1, 4), nullptr, 16);
          if (v > 0x7f) return false;
          out->push_back(char(v));
          i_ += 5;
          continue;
        }
        const char* from = "\"\\/bfnrt";
        const char* to = "\"\\/\b\f\n\r\t";
        const char* at = strchr(from, e);
        if (at == nullptr || e == 0) return false;
        out->push_back(to[at - from]);
        ++i_;
        continue;
      }
      out->push_back(char(c));
      ++i_;
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  bool value(Json* v) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{') {
      v->kind = Json::kObject;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
      for (;;) {
        ws();
        std::string k;
        if (!string(&k)) return false;
        if (v->members.count(k)) return false;  // duplicate member
        ws();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
        ws();
        Json m;
        if (!value(&m)) return false;
        v->members[k] = std::move(m);
        v->order.push_back(k);
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        return i_ < s_.size() && s_[i_++] == '}';
      }
    }
    if (c == '[') {
      v->kind = Json::kArray;
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
      for (;;) {
        ws();
        Json e;
        if (!value(&e)) return false;
        v->items.push_back(std::move(e));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        return i_ < s_.size() && s_[i_++] == ']';
      }
    }
    if (c == '"') {
      v->kind = Json::kString;
      return string(&v->str);
    }
    if (lit("true")) return v->kind = Json::kBool, v->b = true, true;
    if (lit("false")) return v->kind = Json::kBool, true;
    if (lit("null")) return true;
    if (c >= '0' && c <= '9') {
      v->kind = Json::kNumber;
      if (c == '0' && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '9') return false;
      uint64_t n = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') n = n * 10 + uint64_t(s_[i_++] - '0');
      v->integer = n;
      v->number = double(n);
      return true;
    }
    return false;
  }

  const std::string& s_;
  size_t i_ = 0;
};

// hak_print_stats_json into a memory file; returns its text.
std::string stats_json() {
  const int fd = memfd_create("stats_json", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  hak_print_stats_json(fd);
  const off_t size = lseek(fd, 0, SEEK_END);
  std::string text(size_t(size), '\0');
  EXPECT_EQ(pread(fd, text.data(), text.size(), 0), ssize_t(size));
  close(fd);
  return text;
}

Json parse_or_fail(const std::string& text) {
  Json j;
  Parser p(text);
  EXPECT_TRUE(p.parse(&j)) << p.error() << "\nin: " << text;
  return j;
}

// pid: the writer's process id, or 0 for a child's (any but ours).
void expect_documented_fields(const Json& j, pid_t pid) {
  ASSERT_EQ(j.kind, Json::kObject);
  EXPECT_EQ(j["schema"].str, "hakmem-stats");
  EXPECT_EQ(j["schema_version"].integer, uint64_t(HAK_STATS_JSON_SCHEMA));
  EXPECT_EQ(j["hakmem_version"].str, hak_version());
  if (pid != 0) {
    EXPECT_EQ(j["pid"].integer, uint64_t(pid));
  } else {
    EXPECT_NE(j["pid"].integer, uint64_t(getpid()));
    EXPECT_EQ(j["pid"].kind, Json::kNumber);
  }
  const std::vector<std::string> top = {"schema", "schema_version", "hakmem_version", "pid", "options",
                                        "classes", "memory", "memory_limit", "large",
                                        "threads"};
  EXPECT_EQ(j.order, top);
  EXPECT_EQ(j["options"].order,
            (std::vector<std::string>{"mem_diet", "dirty_limit_bytes", "large_cache_limit_bytes", "on_error"}));
  ASSERT_EQ(j["classes"].kind, Json::kArray);
  ASSERT_EQ(j["classes"].items.size(), 60u);  // 40 small and 20 medium classes
  for (size_t i = 0; i < j["classes"].items.size(); ++i) {
    const Json& c = j["classes"].items[i];
    EXPECT_EQ(c.order, (std::vector<std::string>{"class", "block_size", "chunks", "slabs_in_use",
                                                 "live_blocks", "remote_frees", "adoptions"}));
    EXPECT_EQ(c["class"].integer, i);
    for (const auto& name : c.order) EXPECT_EQ(c[name].kind, Json::kNumber) << name;
  }
  EXPECT_EQ(j["memory"].order, (std::vector<std::string>{"mapped_bytes", "resident_bytes",
                                                         "process_resident_bytes", "dirty_bytes",
                                                         "purged_bytes", "collected_bytes"}));
  EXPECT_EQ(j["memory_limit"].order,
            (std::vector<std::string>{"limit_bytes", "source", "usage_bytes", "in_pressure",
                                      "pressure_episodes", "pressure_purged_bytes"}));
  EXPECT_EQ(j["memory_limit"]["source"].kind, Json::kString);
  EXPECT_EQ(j["large"].order,
            (std::vector<std::string>{"live_blocks", "live_bytes", "unmapped_bytes", "cache"}));
  EXPECT_EQ(j["large"]["cache"].order,
            (std::vector<std::string>{"blocks", "bytes", "limit_bytes", "slots"}));
  EXPECT_EQ(j["threads"].order, (std::vector<std::string>{"started", "exited", "live"}));
}

TEST(StatsJsonTest, OneObjectOnOneLineWithTheDocumentedFields) {
  void* small = hak_malloc(100);
  void* large = hak_malloc(size_t{3} << 20);
  const std::string text = stats_json();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line";
  EXPECT_GT(text.size(), size_t{2048}) << "longer than the writer's buffer: flushes in between";
  const Json j = parse_or_fail(text);
  expect_documented_fields(j, getpid());
  EXPECT_GE(j["large"]["live_blocks"].integer, 1u);
  EXPECT_GE(j["threads"]["started"].integer, 1u);
  EXPECT_EQ(j["threads"]["live"].integer,
            j["threads"]["started"].integer - j["threads"]["exited"].integer);
  EXPECT_EQ(j["large"]["cache"]["slots"].integer, 64u);
  EXPECT_EQ(j["options"]["large_cache_limit_bytes"].integer, j["large"]["cache"]["limit_bytes"].integer);
  hak_free(large);
  hak_free(small);
}

// The numbers are hak_get_stats's (those that do not move between the two
// calls in a quiescent single-threaded test).
TEST(StatsJsonTest, NumbersMatchHakGetStats) {
  std::vector<void*> blocks;
  for (int i = 0; i < 3000; ++i) blocks.push_back(hak_malloc(size_t(16 + (i % 40) * 16)));
  void* large = hak_malloc(size_t{5} << 20);
  hak_free(large);  // cached
  const hak_stats st = hakmem_test::stats();
  const Json j = parse_or_fail(stats_json());
  ASSERT_EQ(j["classes"].items.size(), size_t(st.num_classes));
  for (unsigned i = 0; i < st.num_classes; ++i) {
    const Json& c = j["classes"].items[i];
    EXPECT_EQ(c["block_size"].integer, st.classes[i].block_size);
    EXPECT_EQ(c["chunks"].integer, st.classes[i].chunks);
    EXPECT_EQ(c["slabs_in_use"].integer, st.classes[i].slabs_in_use);
    EXPECT_EQ(c["live_blocks"].integer, st.classes[i].live_blocks);
    EXPECT_EQ(c["remote_frees"].integer, st.classes[i].remote_frees);
    EXPECT_EQ(c["adoptions"].integer, st.classes[i].adoptions);
  }
  EXPECT_EQ(j["memory"]["mapped_bytes"].integer, st.bytes_mapped);
  EXPECT_EQ(j["memory"]["dirty_bytes"].integer, st.bytes_dirty_free);
  EXPECT_EQ(j["memory"]["purged_bytes"].integer, st.bytes_purged);
  EXPECT_EQ(j["large"]["live_bytes"].integer, st.large_live_bytes);
  EXPECT_EQ(j["large"]["unmapped_bytes"].integer, st.large_unmapped_bytes);
  EXPECT_EQ(j["large"]["cache"]["blocks"].integer, st.large_cached_blocks);
  EXPECT_EQ(j["large"]["cache"]["bytes"].integer, st.large_cached_bytes);
  EXPECT_GE(st.large_cached_blocks, 1u);
  EXPECT_EQ(j["threads"]["started"].integer, st.threads_started);
  for (void* p : blocks) hak_free(p);
}

// Writing the JSON allocates nothing: glibc's heap (which serves this test's
// own malloc; hakmem's overrides are not linked) does not change, and
// hakmem's small-block counts do not either.
TEST(StatsJsonTest, WritingAllocatesNothing) {
  const int fd = memfd_create("stats_json", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  hak_print_stats_json(fd);  // first call: nothing lazily set up later
  const hak_stats before = hakmem_test::stats();
  const struct mallinfo2 glibc_before = mallinfo2();
  for (int i = 0; i < 10; ++i) hak_print_stats_json(fd);
  const struct mallinfo2 glibc_after = mallinfo2();
  const hak_stats after = hakmem_test::stats();
  close(fd);
  EXPECT_EQ(glibc_before.uordblks, glibc_after.uordblks);
  EXPECT_EQ(glibc_before.hblks, glibc_after.hblks);
  for (unsigned i = 0; i < before.num_classes; ++i) {
    EXPECT_EQ(before.classes[i].live_blocks, after.classes[i].live_blocks) << "class " << i;
  }
  EXPECT_EQ(before.large_live_blocks, after.large_live_blocks);
}

// Decommits are counted: under the default policy a slab freed beyond
// HAKMEM_DIRTY_MB is returned, so a burst larger than that moves the
// counter. (The test process runs with the defaults: 16 MiB.)
TEST(StatsJsonTest, PurgedBytesCountDecommits) {
  const uint64_t before = parse_or_fail(stats_json())["memory"]["purged_bytes"].integer;
  std::vector<void*> blocks;
  for (int i = 0; i < 200000; ++i) blocks.push_back(hak_malloc(256));  // ~50 MiB, ~780 slabs
  for (void* p : blocks) hak_free(p);
  const uint64_t after = parse_or_fail(stats_json())["memory"]["purged_bytes"].integer;
  EXPECT_GT(after, before);
}

HAKMEM_CHILD(json_at_exit) {
  std::vector<std::unique_ptr<std::thread>> threads;
  for (int t = 0; t < 3; ++t) {
    threads.push_back(std::make_unique<std::thread>([] {
      for (int i = 0; i < 1000; ++i) hak_free(hak_malloc(size_t(i % 300 + 1)));
    }));
  }
  for (auto& t : threads) t->join();
  return 0;
}

TEST(StatsJsonTest, HakmemStatsJsonAtExitOnStderr) {
  const auto r = hakmem_test::run_child("json_at_exit", {"HAKMEM_STATS=json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  const Json j = parse_or_fail(r.err);
  expect_documented_fields(j, 0);
  EXPECT_EQ(j["threads"]["started"].integer, 3u);  // the main thread never allocated from hakmem
  EXPECT_EQ(j["threads"]["exited"].integer, 3u);
  EXPECT_EQ(j["threads"]["live"].integer, 0u);
}

TEST(StatsJsonTest, StatsFileReceivesTheStatistics) {
  char dir[] = "/tmp/hakmem_stats_json_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string pattern = std::string(dir) + "/stats.%p.json";
  const auto r = hakmem_test::run_child("json_at_exit", {"HAKMEM_STATS=json", "HAKMEM_STATS_FILE=" + pattern});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_EQ(r.err, "") << "nothing on stderr";
  std::vector<std::string> files;
  for (const auto& line : {std::string("ls ") + dir}) {
    FILE* ls = popen(line.c_str(), "r");
    char name[256];
    while (ls && fgets(name, sizeof(name), ls)) files.push_back(std::string(name, strcspn(name, "\n")));
    if (ls) pclose(ls);
  }
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].rfind("stats.", 0), 0u);
  EXPECT_NE(files[0].find(".json"), std::string::npos);
  EXPECT_EQ(files[0].find("%p"), std::string::npos) << "%p replaced by the pid";
  std::ifstream in(std::string(dir) + "/" + files[0]);
  std::stringstream ss;
  ss << in.rdbuf();
  const Json j = parse_or_fail(ss.str());
  expect_documented_fields(j, 0);
  EXPECT_EQ(files[0], "stats." + std::to_string(j["pid"].integer) + ".json");
  // The text table, and HAKMEM_STATS_FILE alone implying it.
  const std::string text_file = std::string(dir) + "/stats.txt";
  const auto t = hakmem_test::run_child("json_at_exit", {"HAKMEM_STATS_FILE=" + text_file});
  ASSERT_TRUE(t.exited && t.exit_code == 0) << t.describe();
  std::ifstream tin(text_file);
  std::string first;
  std::getline(tin, first);
  EXPECT_EQ(first, "hakmem statistics");
  std::system((std::string("rm -rf ") + dir).c_str());
}

TEST(StatsJsonTest, UnwritableStatsFileFallsBackToStderr) {
  const auto r = hakmem_test::run_child(
      "json_at_exit", {"HAKMEM_STATS=json", "HAKMEM_STATS_FILE=/nonexistent/dir/stats.json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  const std::string warning = "hakmem: cannot open HAKMEM_STATS_FILE /nonexistent/dir/stats.json; "
                              "statistics go to stderr\n";
  ASSERT_EQ(r.err.rfind(warning, 0), 0u) << r.err;
  parse_or_fail(r.err.substr(warning.size()));
}

TEST(StatsJsonTest, VerbosePrintsTheEffectiveOptions) {
  const auto r = hakmem_test::run_child(
      "json_at_exit", {"HAKMEM_VERBOSE=1", "HAKMEM_DIRTY_MB=5", "HAKMEM_PREWARM=64:1,4096:2",
                       "HAKMEM_ON_ERROR=continue", "HAKMEM_MEM_DIET=7"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  const std::string version_line = std::string("hakmem: version ") + hak_version();
  EXPECT_EQ(r.err.rfind(version_line, 0), 0u) << r.err;
  for (const char* line : {"hakmem: option HAKMEM_DIRTY_MB=5\n", "hakmem: option HAKMEM_MEM_DIET=1\n",
                           "hakmem: option HAKMEM_PREWARM=64:1,4096:2\n",
                           "hakmem: option HAKMEM_ON_ERROR=continue\n", "hakmem: option HAKMEM_STATS=0\n",
                           "hakmem: option HAKMEM_LARGE_CACHE_MB=16\n", "hakmem: option HAKMEM_VERBOSE=1\n",
                           "hakmem: option HAKMEM_MEMORY_LIMIT_MB=cgroup\n", "hakmem: memory limit "}) {
    EXPECT_NE(r.err.find(line), std::string::npos) << line << " in:\n" << r.err;
  }
}

TEST(StatsJsonTest, VerbosePrintsTheMemoryLimitAndItsSource) {
  const auto r = hakmem_test::run_child("json_at_exit", {"HAKMEM_VERBOSE=1", "HAKMEM_MEMORY_LIMIT_MB=300",
                                                         "HAKMEM_STATS=json"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  EXPECT_NE(r.err.find("hakmem: option HAKMEM_MEMORY_LIMIT_MB=300\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hakmem: memory limit 314572800 bytes (source knob)"), std::string::npos)
      << r.err;
  const size_t at = r.err.find("{\"schema\"");
  ASSERT_NE(at, std::string::npos) << r.err;
  const Json j = parse_or_fail(r.err.substr(at));
  EXPECT_EQ(j["memory_limit"]["limit_bytes"].integer, uint64_t{300} << 20);
  EXPECT_EQ(j["memory_limit"]["source"].str, "knob");
  const auto off = hakmem_test::run_child("json_at_exit", {"HAKMEM_VERBOSE=1", "HAKMEM_MEMORY_LIMIT_MB=0"});
  ASSERT_TRUE(off.exited && off.exit_code == 0) << off.describe();
  EXPECT_NE(off.err.find("hakmem: memory limit none (source none)\n"), std::string::npos) << off.err;
}

TEST(StatsJsonTest, VersionIsMajorMinorPatch) {
  const std::string v = hak_version();
  int major = -1, minor = -1, patch = -1;
  char end = 0;
  EXPECT_EQ(sscanf(v.c_str(), "%d.%d.%d%c", &major, &minor, &patch, &end), 3) << v;
}

}  // namespace
