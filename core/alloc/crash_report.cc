// HAKMEM_CRASH_REPORT=1: on SIGSEGV, SIGBUS or SIGABRT print a short
// allocator summary with write(2), then hand the signal to the handler that
// was installed before hakmem's.
#include <signal.h>
#include <string.h>

#include "core/alloc/process.h"
#include "platform/os.h"

namespace hakmem {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGABRT};
constexpr unsigned kNumSignals = sizeof(kSignals) / sizeof(kSignals[0]);
struct sigaction g_previous[kNumSignals];

void crash_handler(int sig, siginfo_t* info, void* context) {
  os::Line()
      .str("hakmem crash report: signal ")
      .u64(unsigned(sig))
      .str(" address ")
      .hex(reinterpret_cast<uintptr_t>(info ? info->si_addr : nullptr))
      .str(", bytes mapped ")
      .u64(g_process.slabs.mapped_bytes() + g_process.large.mapped_bytes())
      .str(", threads ")
      .u64(g_process.threads_started.load(lockfree::MemoryOrder::relaxed))
      .str(" started / ")
      .u64(g_process.threads_exited.load(lockfree::MemoryOrder::relaxed))
      .str(" exited\n")
      .write_to(os::kStderr);
  for (unsigned cls = 0; cls < kNumClasses; ++cls) {
    const ClassHead& head = g_process.slabs.head(cls);
    const uint64_t chunks = head.chunks.count();
    if (chunks == 0) continue;
    os::Line()
        .str("hakmem crash report: class ")
        .u64(cls)
        .str(" (")
        .u64(class_to_size(cls))
        .str(" B): ")
        .u64(chunks)
        .str(" chunks, ")
        .u64(head.slabs_owned.load(lockfree::MemoryOrder::relaxed))
        .str(" slabs owned\n")
        .write_to(os::kStderr);
  }
  // Defer to the previous disposition and let the signal take effect.
  for (unsigned i = 0; i < kNumSignals; ++i) {
    if (kSignals[i] != sig) continue;
    const struct sigaction& prev = g_previous[i];
    if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, context);
      return;
    }
    if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
      prev.sa_handler(sig);
      return;
    }
    sigaction(sig, &prev, nullptr);
    raise(sig);  // SIGSEGV/SIGBUS re-fault on return anyway; SIGABRT needs it
    return;
  }
}

}  // namespace

void install_crash_handlers() noexcept {
  for (unsigned i = 0; i < kNumSignals; ++i) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(kSignals[i], &sa, &g_previous[i]);
  }
}

}  // namespace hakmem
