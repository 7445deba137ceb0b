#include "core/limit/memory_limit.h"

#include "platform/os.h"

namespace hakmem {

using lockfree::MemoryOrder;

const char* limit_source_name(LimitSource s) noexcept {
  switch (s) {
    case LimitSource::kCgroupV1:
      return "cgroup_v1";
    case LimitSource::kCgroupV2:
      return "cgroup_v2";
    case LimitSource::kKnob:
      return "knob";
    case LimitSource::kNone:
      break;
  }
  return "none";
}

void MemoryLimit::configure(uint64_t limit_bytes, LimitSource source, const char* usage_path,
                            uint64_t purge_ms, PurgeAll purge) noexcept {
  limit_ = limit_bytes;
  source_ = limit_bytes == 0 ? LimitSource::kNone : source;
  purge_ = purge;
  usage_path_[0] = 0;
  if (usage_path != nullptr) {
    size_t n = 0;
    while (usage_path[n] && n + 1 < sizeof(usage_path_)) {
      usage_path_[n] = usage_path[n];
      ++n;
    }
    usage_path_[n] = 0;
  }
  uint64_t headroom = limit_bytes / 8;
  if (headroom < kMinHeadroom) headroom = kMinHeadroom;
  if (headroom > limit_bytes / 2) headroom = limit_bytes / 2;
  headroom_ = headroom;
  // A quarter of HAKMEM_PURGE_MS, as the decay passes, but never further
  // apart than kMaxCheckNs (a check is three system calls: four a second
  // cost nothing, and a longer gap lets a burst run into the limit before
  // anything reacts) nor closer than kMinCheckNs.
  uint64_t interval = purge_ms * 1000 * 1000 / lockfree::DecaySchedule::kIntervalDivisor;
  if (interval == 0 || interval > kMaxCheckNs) interval = kMaxCheckNs;
  if (interval < kMinCheckNs) interval = kMinCheckNs;
  schedule_.configure(limit_bytes == 0 ? 0 : interval * lockfree::DecaySchedule::kIntervalDivisor);
  pressure_.store(0, MemoryOrder::relaxed);
  grown_.store(0, MemoryOrder::relaxed);
}

uint64_t MemoryLimit::read_usage() const noexcept {
  if (usage_path_[0] != 0) return platform::read_cgroup_usage(usage_path_);
  return os::process_resident_bytes();
}

void MemoryLimit::check(uint64_t now_ns) noexcept {
  const uint64_t usage = read_usage();
  if (usage == 0) return;  // unreadable: keep the state
  last_usage_.store(usage, MemoryOrder::relaxed);
  if (usage >= enter_at()) {
    uint32_t expected = 0;
    // Relaxed: the state is a hint for the budgets (in_pressure) and orders
    // nothing; the CAS only makes one of two concurrent checks (a caller
    // whose clock lags) count the episode.
    if (pressure_.compare_exchange_strong(expected, 1, MemoryOrder::relaxed,
                                          MemoryOrder::relaxed)) {
      episodes_.fetch_add(1, MemoryOrder::relaxed);
    }
  } else if (usage < leave_at()) {
    pressure_.store(0, MemoryOrder::relaxed);  // relaxed: a hint, as above
    return;
  }
  // Under pressure every check returns what was retained since the last
  // one: pages kept by frees that had not seen the state yet, idle owners'
  // slabs.
  if (in_pressure() && purge_ != nullptr) purged_.fetch_add(purge_(now_ns), MemoryOrder::relaxed);
}

// note_growth crossed a step: the caller whose exchange finds the step
// still reached (the others find what grew after it) checks.
void MemoryLimit::volume_check() noexcept {
  if (grown_.exchange(0, MemoryOrder::relaxed) < volume_step()) return;
  volume_checks_.fetch_add(1, MemoryOrder::relaxed);
  check(os::coarse_now_ns());
}

}  // namespace hakmem
