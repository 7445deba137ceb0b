// HAKMEM_* environment parsing (core/alloc/config.cc). read_config_from_environment
// is called directly after setenv; the allocator's own configuration (read
// once at initialisation) is not affected.
#include "core/alloc/config.h"

#include <stdlib.h>

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace hakmem {
namespace {

constexpr const char* kAllVariables[] = {
    "HAKMEM_LOG",       "HAKMEM_STATS",          "HAKMEM_CRASH_REPORT", "HAKMEM_ON_ERROR",
    "HAKMEM_MEM_DIET",  "HAKMEM_TINY_MEM_DIET",  "HAKMEM_DIRTY_MB",     "HAKMEM_LARGE_CACHE_MB",
    "HAKMEM_PREWARM",
};

class ConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kAllVariables) unsetenv(v);
  }
  void TearDown() override {
    for (const char* v : kAllVariables) unsetenv(v);
  }
  static Config with(const char* name, const char* value) {
    setenv(name, value, 1);
    const Config c = read_config_from_environment();
    unsetenv(name);
    return c;
  }
};

TEST_F(ConfigTest, Defaults) {
  const Config c = read_config_from_environment();
  EXPECT_FALSE(c.log);
  EXPECT_FALSE(c.stats);
  EXPECT_FALSE(c.crash_report);
  EXPECT_EQ(c.on_error, OnError::kAbort);
  EXPECT_EQ(c.mem_diet, 1);
  EXPECT_EQ(c.dirty_limit, size_t{16} << 20);
  EXPECT_EQ(c.large_cache_limit, size_t{16} << 20);
  EXPECT_EQ(c.prewarm_count, 0u);
}

TEST_F(ConfigTest, BooleanFlags) {
  for (const char* name : {"HAKMEM_LOG", "HAKMEM_STATS", "HAKMEM_CRASH_REPORT"}) {
    auto flag = [name](const Config& c) {
      const std::string n = name;
      return n == "HAKMEM_LOG" ? c.log : n == "HAKMEM_STATS" ? c.stats : c.crash_report;
    };
    for (const char* on : {"1", "yes", "true", "on", "2"}) {
      EXPECT_TRUE(flag(with(name, on))) << name << "=" << on;
    }
    for (const char* off : {"0", "no", "false", "off", ""}) {
      EXPECT_FALSE(flag(with(name, off))) << name << "=" << off;
    }
  }
}

TEST_F(ConfigTest, OnError) {
  EXPECT_EQ(with("HAKMEM_ON_ERROR", "continue").on_error, OnError::kContinue);
  EXPECT_EQ(with("HAKMEM_ON_ERROR", "abort").on_error, OnError::kAbort);
  EXPECT_EQ(with("HAKMEM_ON_ERROR", "").on_error, OnError::kAbort);
  EXPECT_EQ(with("HAKMEM_ON_ERROR", "continue-please").on_error, OnError::kAbort);
}

TEST_F(ConfigTest, MemDiet) {
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "0").mem_diet, 0);
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "1").mem_diet, 1);
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "2").mem_diet, 2);
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "3").mem_diet, 1) << "out of range keeps the default";
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "x").mem_diet, 1);
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "-1").mem_diet, 1);
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "").mem_diet, 1);
  // The alias, and the precedence of the main name.
  EXPECT_EQ(with("HAKMEM_TINY_MEM_DIET", "2").mem_diet, 2);
  EXPECT_EQ(with("HAKMEM_TINY_MEM_DIET", "0").mem_diet, 0);
  setenv("HAKMEM_TINY_MEM_DIET", "2", 1);
  EXPECT_EQ(with("HAKMEM_MEM_DIET", "0").mem_diet, 0);
}

TEST_F(ConfigTest, Megabytes) {
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "0").dirty_limit, 0u);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "1").dirty_limit, size_t{1} << 20);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "100").dirty_limit, size_t{100} << 20);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "4096").dirty_limit, size_t{4096} << 20);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "abc").dirty_limit, size_t{16} << 20);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "-5").dirty_limit, size_t{16} << 20);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "").dirty_limit, size_t{16} << 20);
  // Absurd values (which would overflow when shifted) keep the default.
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "99999999999999999999999").dirty_limit, size_t{16} << 20);
  EXPECT_EQ(with("HAKMEM_LARGE_CACHE_MB", "0").large_cache_limit, 0u);
  EXPECT_EQ(with("HAKMEM_LARGE_CACHE_MB", "512").large_cache_limit, size_t{512} << 20);
  EXPECT_EQ(with("HAKMEM_LARGE_CACHE_MB", "lots").large_cache_limit, size_t{16} << 20);
  // The two do not leak into each other.
  EXPECT_EQ(with("HAKMEM_LARGE_CACHE_MB", "512").dirty_limit, size_t{16} << 20);
  EXPECT_EQ(with("HAKMEM_DIRTY_MB", "3").large_cache_limit, size_t{16} << 20);
}

TEST_F(ConfigTest, Prewarm) {
  Config c = with("HAKMEM_PREWARM", "1024:4,64");
  ASSERT_EQ(c.prewarm_count, 2u);
  EXPECT_EQ(c.prewarm[0].size, 1024u);
  EXPECT_EQ(c.prewarm[0].chunks, 4u);
  EXPECT_EQ(c.prewarm[1].size, 64u);
  EXPECT_EQ(c.prewarm[1].chunks, 1u) << "the chunk count defaults to 1";

  c = with("HAKMEM_PREWARM", "256:5000");
  ASSERT_EQ(c.prewarm_count, 1u);
  EXPECT_EQ(c.prewarm[0].chunks, 1024u) << "chunk counts are capped";

  c = with("HAKMEM_PREWARM", "16:1,32:1,48:1,64:1,80:1,96:1,112:1,128:1,144:1,160:1");
  EXPECT_EQ(c.prewarm_count, 8u) << "at most 8 entries";
  EXPECT_EQ(c.prewarm[7].size, 128u);

  c = with("HAKMEM_PREWARM", "64:2,xyz,128:1");
  ASSERT_EQ(c.prewarm_count, 1u) << "parsing stops at the first bad entry";
  EXPECT_EQ(c.prewarm[0].size, 64u);

  // A size beyond 32 bits is no small size: it must not wrap around to one.
  c = with("HAKMEM_PREWARM", "4294967312:1");
  for (unsigned i = 0; i < c.prewarm_count; ++i) {
    EXPECT_GT(c.prewarm[i].size, 32768u) << "4294967312 became " << c.prewarm[i].size;
  }

  EXPECT_EQ(with("HAKMEM_PREWARM", "").prewarm_count, 0u);
  EXPECT_EQ(with("HAKMEM_PREWARM", "garbage").prewarm_count, 0u);
  EXPECT_EQ(with("HAKMEM_PREWARM", ":3").prewarm_count, 0u);
  EXPECT_EQ(with("HAKMEM_PREWARM", "64:").prewarm_count, 0u);
}

TEST_F(ConfigTest, EverythingAtOnce) {
  setenv("HAKMEM_LOG", "1", 1);
  setenv("HAKMEM_STATS", "1", 1);
  setenv("HAKMEM_CRASH_REPORT", "1", 1);
  setenv("HAKMEM_ON_ERROR", "continue", 1);
  setenv("HAKMEM_MEM_DIET", "2", 1);
  setenv("HAKMEM_DIRTY_MB", "7", 1);
  setenv("HAKMEM_LARGE_CACHE_MB", "9", 1);
  setenv("HAKMEM_PREWARM", "4096:2", 1);
  const Config c = read_config_from_environment();
  EXPECT_TRUE(c.log);
  EXPECT_TRUE(c.stats);
  EXPECT_TRUE(c.crash_report);
  EXPECT_EQ(c.on_error, OnError::kContinue);
  EXPECT_EQ(c.mem_diet, 2);
  EXPECT_EQ(c.dirty_limit, size_t{7} << 20);
  EXPECT_EQ(c.large_cache_limit, size_t{9} << 20);
  ASSERT_EQ(c.prewarm_count, 1u);
  EXPECT_EQ(c.prewarm[0].size, 4096u);
  EXPECT_EQ(c.prewarm[0].chunks, 2u);
}

}  // namespace
}  // namespace hakmem
