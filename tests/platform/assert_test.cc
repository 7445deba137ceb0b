// HAKMEM_ASSERT (platform/assert.h): in a debug build (--config=debug) a
// failed assertion reports one line and aborts; in every other build it is
// compiled out, condition included.
#include <gtest/gtest.h>

#include "platform/assert.h"

namespace {

#if defined(HAKMEM_DEBUG) && HAKMEM_DEBUG

TEST(Assert, FailureReportsWhatBrokeAndAborts) {
  EXPECT_DEATH(HAKMEM_ASSERT(1 + 1 == 3, "arithmetic holds"),
               "hakmem: assertion failed: arithmetic holds \\(1 \\+ 1 == 3, "
               "tests/platform/assert_test.cc:[0-9]+\\)");
}

TEST(Assert, HoldingConditionIsEvaluatedOnce) {
  int evaluations = 0;
  HAKMEM_ASSERT(++evaluations == 1, "evaluated once");
  EXPECT_EQ(evaluations, 1);
}

#else

TEST(Assert, CompiledOutOutsideDebugBuilds) {
  int evaluations = 0;
  HAKMEM_ASSERT(++evaluations == 42, "never evaluated");
  EXPECT_EQ(evaluations, 0);
}

#endif

}  // namespace
