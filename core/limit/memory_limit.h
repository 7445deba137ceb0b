// MemoryLimit: keeps the process within a memory limit (README, "Container
// memory limits").
//
// The limit L is the cgroup's (platform/cgroup.h), or HAKMEM_MEMORY_LIMIT_MB.
// The purge passes (the slab source's and the large allocator's
// maybe_purge, the background purger) call maybe_check(); at most once per
// check interval one of them wins the election and reads the usage U (the
// cgroup's usage file, or the process's resident set when the limit comes
// from the knob). Then:
//   - U >= L - headroom: the process enters pressure (one episode), and the
//     purge callback returns everything retained at once: free slabs' dirty
//     pages, cached large ranges, idle owners' slabs. While in pressure the
//     dirty budget and the large-cache budget count as 0 (dirty_limit() and
//     limit_granules() in the parts), so later frees return memory at once,
//     and every check purges again.
//   - U < L - 2 * headroom: pressure ends (hysteresis: usage must have
//     fallen by a headroom's worth, so a process hovering at the threshold
//     does not flap between keeping and returning memory every check).
// Checks are also driven by allocation volume: the parts report what they
// are about to make resident (note_growth: a fresh slab or run, a new chunk,
// a new large mapping), and once a quarter of the headroom has grown since
// the last volume check, the reporter that crosses it checks at once,
// however recent the last timed check. A burst that allocates a headroom's
// worth within one check interval thus still meets a check before it can
// cross the limit.
// headroom = max(L / 8, 16 MiB), at most L / 2: an eighth leaves room for
// what the program allocates between two checks and for the kernel's own
// reclaim margin; 16 MiB is the default dirty budget, so that for small
// limits one budget's worth of retained pages alone never crosses the line.
//
// Nothing here takes a lock or allocates; every shared field is an atomic
// read and written relaxed (see each).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockfree/decay.h"
#include "lockfree/default_atomics.h"
#include "platform/cgroup.h"

namespace hakmem {

enum class LimitSource : uint8_t { kNone = 0, kCgroupV1 = 1, kCgroupV2 = 2, kKnob = 3 };

const char* limit_source_name(LimitSource s) noexcept;

class MemoryLimit {
 public:
  // Returns everything retained now; the bytes returned.
  using PurgeAll = uint64_t (*)(uint64_t now_ns) noexcept;

  static constexpr uint64_t kMinHeadroom = uint64_t{16} << 20;
  // Checks are at most this far apart (in activity), and at least kMinCheckNs.
  static constexpr uint64_t kMaxCheckNs = uint64_t{250} * 1000 * 1000;
  static constexpr uint64_t kMinCheckNs = uint64_t{10} * 1000 * 1000;

  // Before any other thread uses it. limit_bytes 0: no limit (the rest is
  // ignored). usage_path empty: the usage is the process's resident set.
  // purge_ms is HAKMEM_PURGE_MS: checks run at most once per quarter of it,
  // and at least every kMaxCheckNs (also when it is 0).
  void configure(uint64_t limit_bytes, LimitSource source, const char* usage_path,
                 uint64_t purge_ms, PurgeAll purge) noexcept;

  bool enabled() const noexcept { return limit_ != 0; }
  uint64_t limit_bytes() const noexcept { return limit_; }
  LimitSource source() const noexcept { return source_; }
  uint64_t headroom() const noexcept { return headroom_; }
  uint64_t enter_at() const noexcept { return limit_ - headroom_; }
  uint64_t leave_at() const noexcept { return limit_ > 2 * headroom_ ? limit_ - 2 * headroom_ : 0; }
  uint64_t check_interval_ns() const noexcept { return schedule_.interval_ns(); }
  const char* usage_path() const noexcept { return usage_path_; }

  // Whether the budgets count as 0 now. Relaxed: a hint read on slow paths
  // (a slab release, a large free); a stale value keeps or returns one more
  // slab or range, both correct, and the next check corrects the state.
  bool in_pressure() const noexcept { return pressure_.load(lockfree::MemoryOrder::relaxed) != 0; }

  // Runs a check if one is due: cheap otherwise (a relaxed load and a
  // compare, lockfree/decay.h).
  void maybe_check(uint64_t now_ns) noexcept {
    if (enabled() && schedule_.claim_pass(now_ns)) check(now_ns);
  }
  // Reads the usage and updates the pressure state (and purges).
  void check(uint64_t now_ns) noexcept;

  // The caller is about to make `bytes` resident (slow paths only). Every
  // volume_step() bytes, the caller that crosses the step runs a check.
  // Relaxed: grown_ is a counter; the exchange only elects that caller (a
  // check at the same moment as a timed one is correct, only redundant).
  void note_growth(uint64_t bytes) noexcept {
    if (!enabled()) return;
    if (grown_.fetch_add(bytes, lockfree::MemoryOrder::relaxed) + bytes < volume_step()) return;
    volume_check();
  }
  uint64_t volume_step() const noexcept { return headroom_ / 4; }

  // A free that the empty budgets made return `bytes` at once (slow paths:
  // a slab release, a large free). Relaxed: a statistic.
  void count_returned(uint64_t bytes) noexcept {
    purged_.fetch_add(bytes, lockfree::MemoryOrder::relaxed);
  }

  // Statistics. purged_bytes: returned to the OS under pressure, by the
  // checks' purges and by frees (count_returned).
  uint64_t last_usage() const noexcept { return last_usage_.load(lockfree::MemoryOrder::relaxed); }
  uint64_t episodes() const noexcept { return episodes_.load(lockfree::MemoryOrder::relaxed); }
  uint64_t purged_bytes() const noexcept { return purged_.load(lockfree::MemoryOrder::relaxed); }
  uint64_t volume_checks() const noexcept {
    return volume_checks_.load(lockfree::MemoryOrder::relaxed);
  }

 private:
  using Counter = lockfree::DefaultAtomics::Atomic<uint64_t>;
  uint64_t read_usage() const noexcept;
  void volume_check() noexcept;

  uint64_t limit_ = 0;
  uint64_t headroom_ = 0;
  LimitSource source_ = LimitSource::kNone;
  PurgeAll purge_ = nullptr;
  char usage_path_[platform::kCgroupPathMax] = {};
  // The election of checks: its interval is the check interval.
  lockfree::DecaySchedule schedule_;
  lockfree::DefaultAtomics::Atomic<uint32_t> pressure_{0};
  Counter last_usage_{0};
  Counter episodes_{0};
  Counter purged_{0};
  Counter grown_{0};  // bytes noted since the last volume check
  Counter volume_checks_{0};
};

}  // namespace hakmem
