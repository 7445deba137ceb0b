// HAKMEM_CRASH_REPORT=1 (core/alloc/crash_report.cc): a process that crashes
// prints an allocator summary on stderr and still dies of its signal (or
// is handed to the handler it had installed before).
//
// Every scenario runs in a child process. hakmem initialises (and installs
// its handlers) at the first hak_ call.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "api/hakmem.h"
#include "core/meta/size_classes.h"
#include "tests/support/test_util.h"

namespace {

using hakmem_test::ChildResult;
using hakmem_test::run_child;

void allocate_something() {
  for (int i = 0; i < 100; ++i) hak_malloc(200);  // left live on purpose
  hak_malloc(5 << 20);
}

[[gnu::noinline]] void segfault() {
  volatile int* bad = reinterpret_cast<volatile int*>(uintptr_t{16});
  *bad = 1;
}

HAKMEM_CHILD(segv) {
  allocate_something();
  segfault();
  return 0;
}

HAKMEM_CHILD(segv_in_thread) {
  allocate_something();
  std::thread([] {
    hak_malloc(64);
    segfault();
  }).join();
  return 0;
}

HAKMEM_CHILD(abort) {
  allocate_something();
  abort();
}

volatile int g_depth_sink;
[[gnu::noinline]] int recurse(int n) {
  volatile char pad[4096];
  pad[0] = char(n);
  g_depth_sink = pad[0];
  return recurse(n + 1) + pad[0];
}

HAKMEM_CHILD(stack_overflow) {
  allocate_something();
  return recurse(0);
}

// A handler the program installed before hakmem initialised runs after
// hakmem's report.
void program_handler(int, siginfo_t*, void*) {
  static const char msg[] = "program handler ran\n";
  ssize_t ignored = write(2, msg, sizeof(msg) - 1);
  (void)ignored;
  _exit(42);
}

HAKMEM_CHILD(segv_previous_handler) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = program_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, nullptr);
  allocate_something();
  segfault();
  return 0;
}

const std::string kReport = "hakmem crash report: signal ";

TEST(CrashReport, SegfaultPrintsReportAndDiesOfSigsegv) {
  const ChildResult r = run_child("segv", {"HAKMEM_CRASH_REPORT=1"});
  ASSERT_TRUE(r.signaled) << r.describe();
  EXPECT_EQ(r.term_signal, SIGSEGV) << r.describe();
  EXPECT_NE(r.err.find(kReport + "11 address 0x10,"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bytes mapped "), std::string::npos) << r.err;
  // One line per class in use, with its chunk count.
  const unsigned c = hakmem::size_to_class(200);
  const std::string cls = "hakmem crash report: class " + std::to_string(c) + " (" +
                          std::to_string(hakmem::class_to_size(c)) + " B): 1 chunks";
  EXPECT_NE(r.err.find(cls), std::string::npos) << r.err;
  EXPECT_EQ(hakmem_test::count_occurrences(r.err, kReport), 1u) << "one report only\n" << r.err;
}

TEST(CrashReport, SegfaultInAnotherThread) {
  const ChildResult r = run_child("segv_in_thread", {"HAKMEM_CRASH_REPORT=1"});
  ASSERT_TRUE(r.signaled) << r.describe();
  EXPECT_EQ(r.term_signal, SIGSEGV);
  EXPECT_NE(r.err.find(kReport + "11 "), std::string::npos) << r.err;
}

TEST(CrashReport, AbortPrintsReportAndDiesOfSigabrt) {
  const ChildResult r = run_child("abort", {"HAKMEM_CRASH_REPORT=1"});
  ASSERT_TRUE(r.signaled) << r.describe();
  EXPECT_EQ(r.term_signal, SIGABRT);
  EXPECT_NE(r.err.find(kReport + "6 "), std::string::npos) << r.err;
}

TEST(CrashReport, StackOverflowStillDies) {
  // The handler has no stack to run on; what matters is that the process
  // dies of SIGSEGV rather than hanging or exiting normally.
  const ChildResult r = run_child("stack_overflow", {"HAKMEM_CRASH_REPORT=1"});
  ASSERT_TRUE(r.signaled) << r.describe();
  EXPECT_EQ(r.term_signal, SIGSEGV);
}

TEST(CrashReport, PreviousHandlerRunsAfterTheReport) {
  const ChildResult r = run_child("segv_previous_handler", {"HAKMEM_CRASH_REPORT=1"});
  ASSERT_TRUE(r.exited) << r.describe();
  EXPECT_EQ(r.exit_code, 42);
  const size_t report = r.err.find(kReport + "11 ");
  const size_t handler = r.err.find("program handler ran");
  ASSERT_NE(report, std::string::npos) << r.err;
  ASSERT_NE(handler, std::string::npos) << r.err;
  EXPECT_LT(report, handler);
}

TEST(CrashReport, OffByDefault) {
  ChildResult r = run_child("segv", {});
  ASSERT_TRUE(r.signaled) << r.describe();
  EXPECT_EQ(r.term_signal, SIGSEGV);
  EXPECT_EQ(r.err.find("hakmem crash report"), std::string::npos) << r.err;
  r = run_child("segv_previous_handler", {"HAKMEM_CRASH_REPORT=0"});
  EXPECT_TRUE(r.exited && r.exit_code == 42) << r.describe();
  EXPECT_EQ(r.err.find("hakmem crash report"), std::string::npos) << r.err;
}

}  // namespace
