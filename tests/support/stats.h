// hakmem's statistics as the tests read them.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"

namespace hakmem_test {

// hak_get_stats into a fresh struct. A failed call is a test failure and
// leaves every number zero.
inline hak_stats stats() {
  hak_stats st{};
  st.version = HAK_STATS_VERSION;
  EXPECT_EQ(hak_get_stats(&st), 0);
  return st;
}

// The statistics of the size class that serves `size`.
inline hak_class_stats class_stats(size_t size) { return stats().classes[hakmem::any_size_to_class(size)]; }

}  // namespace hakmem_test
