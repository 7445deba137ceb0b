// Shared pieces of the allocator's tests: a main() that can also run a
// named child scenario, running the test binary itself as a child process,
// and small measurement helpers.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace hakmem_test {

// A scenario run in a fresh process: `test_binary --hakmem_child=NAME`.
// Its return value becomes the process exit status.
using ChildMain = int (*)();

struct ChildRegistrar {
  ChildRegistrar(const char* name, ChildMain fn);
};

// Defines a child scenario:
//   HAKMEM_CHILD(expansion_log) { ...; return 0; }
#define HAKMEM_CHILD(name)                                                       \
  static int hakmem_child_##name();                                              \
  static ::hakmem_test::ChildRegistrar hakmem_child_registrar_##name(#name,      \
                                                                     &hakmem_child_##name); \
  static int hakmem_child_##name()

// In a child scenario: fail (exit status 1) with a message on stdout.
#define CHILD_CHECK(cond)                                                           \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      printf("child check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
      fflush(stdout);                                                               \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

struct ChildResult {
  bool timed_out = false;
  bool exited = false;  // normal exit (exit_code valid)
  int exit_code = -1;
  bool signaled = false;  // killed by a signal (term_signal valid)
  int term_signal = 0;
  std::string out;  // stdout
  std::string err;  // stderr

  std::string describe() const;
};

// Runs the scenario `name` of this test binary in a child process with the
// current environment plus `env` ("NAME=value" entries; every other HAKMEM_*
// variable is removed). The child is killed after `timeout_seconds`.
ChildResult run_child(const std::string& name, const std::vector<std::string>& env,
                      double timeout_seconds = 25);

// Like run_child, for any program.
ChildResult run_program(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        double timeout_seconds = 25);

// Resident set size from /proc/self/statm, in bytes.
size_t resident_bytes();

// CLOCK_MONOTONIC in milliseconds.
uint64_t now_ms();

// Sleeps `ms` milliseconds (resumed after a signal). Calls nothing of hakmem's.
void sleep_ms(uint64_t ms);

// Number of non-overlapping occurrences of `needle` in `hay`.
size_t count_occurrences(const std::string& hay, const std::string& needle);

}  // namespace hakmem_test
