// Helpers for the multithreaded stress tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <latch>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "platform/sanitizer.h"
#include "tests/support/rng.h"

namespace hakmem::lockfree::testing {

// Runs body(i) on `n` threads released together, and joins them.
inline void run_threads(unsigned n, const std::function<void(unsigned)>& body) {
  std::latch start(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      body(i);
    });
  }
  for (auto& t : threads) t.join();
}

// The tests' per-thread generator (tests/support/rng.h).
using ::hakmem_test::Rng;

// Repetitions of a stress scenario. Each repetition is another chance for
// the two cores to interleave the threads at a bad moment, so a bug that
// needs a narrow window is caught more reliably. TSan runs are ~10x slower.
#if HAKMEM_BUILT_WITH_TSAN
inline constexpr unsigned kStressRounds = 2;
#else
inline constexpr unsigned kStressRounds = 4;
#endif

// Runs round() kStressRounds times, each under a trace naming the round;
// stops after the first round that fails.
template <class Round>
void repeat_rounds(Round&& round) {
  for (unsigned r = 0; r < kStressRounds; ++r) {
    SCOPED_TRACE(::testing::Message() << "round " << r);
    round();
    if (::testing::Test::HasFailure()) return;
  }
}

// taken[k] counts how often item k was taken: "" if every item was taken
// exactly once, else how many `items` were lost and how many duplicated.
inline std::string check_taken(const std::vector<uint32_t>& taken, const char* items) {
  std::ostringstream err;
  uint64_t lost = 0, duplicated = 0;
  for (uint32_t c : taken) {
    lost += c == 0;
    duplicated += c > 1;
  }
  if (lost != 0) err << lost << " " << items << " never taken\n";
  if (duplicated != 0) err << duplicated << " " << items << " taken more than once\n";
  return err.str();
}

// check_taken itself must report lost and duplicated items, or a stress
// test that relies on it proves nothing.
inline void expect_check_taken_detects(const char* items) {
  EXPECT_EQ(check_taken({1, 1, 1}, items), "");
  EXPECT_NE(check_taken({1, 0, 1}, items).find(std::string("1 ") + items + " never taken"),
            std::string::npos);
  EXPECT_NE(check_taken({1, 2, 1}, items).find("taken more than once"), std::string::npos);
}

// A value derived from a node's identity, written before publication and
// checked by readers: a torn or unpublished write shows as a mismatch.
constexpr uint64_t stamp(uint64_t id) { return (id + 1) * 0x9E3779B97F4A7C15ull; }

}  // namespace hakmem::lockfree::testing
