// Relacy model of the large-block cache's split and coalesce on the shipped
// lockfree::BasicRangeCache (core/large/large.cc uses it with 2 MiB units):
// ranges are taken out of the cache by a CAS from their slot value to 0 and
// put back by a CAS from 0, and a free takes the cached ranges just before
// and after its own out of the cache (take_adjacent) to merge them.
//
// Three granules, 1..3 (unit 16 "bytes", so addresses are 16..48). Thread 0
// owns granule 1 and thread 1 granule 2, as live blocks; granule 3 starts
// cached. Threads 0 and 1 free theirs: each writes its header (the plain
// size at the range's base) and its data, then coalesces with whatever
// neighbours are cached and puts the merged range back, with the header of
// the merged range rewritten. Thread 2 allocates one granule twice: it
// takes the best fit (or the largest range), reads its header (which must
// equal the slot's size), splits the tail off as a range of its own (header
// written, then put), uses its granule, and frees it like the others. Each
// owner bumps a relaxed holder count per granule that must go 0 -> 1 (a
// granule is owned by at most one thread), and writes the granule's plain
// data. At the end the cache holds disjoint ranges covering the three
// granules exactly, each with a matching header.
//
// Negative controls, each of which Relacy must report:
//  - RangeCacheOrders::take = relaxed: a taker does not acquire the previous
//    owner's header and data (data race);
//  - RangeCacheOrders::put = relaxed: a put does not publish them (data
//    race);
//  - SplitCasAtomics: the claim's check that the slot still holds the range
//    skipped (a load, compare and plain store): two threads take the same
//    range (holder assertion or data race).
#include <cstdint>

#include "lockfree/memory_order.h"
#include "lockfree/range_cache.h"
#include "model_checks/broken_orders.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::CachedRange;
using lockfree::MemoryOrder;
using lockfree::RangeCacheOrders;
using lockfree::RelacyAtomics;
using lockfree::SplitCasAtomics;

constexpr unsigned kThreads = 3;
constexpr unsigned kShift = 4;
constexpr unsigned kGranules = 3;  // granules 1..3; 0 is the null address
constexpr size_t kLimit = 3;

constexpr uintptr_t addr_of(unsigned g) { return uintptr_t(g) << kShift; }
constexpr unsigned granule_of(uintptr_t a) { return unsigned(a >> kShift); }

template <class P, class Orders>
struct RangeCacheModel : rl::test_suite<RangeCacheModel<P, Orders>, kThreads> {
  using Cache = lockfree::BasicRangeCache<P, Orders, kShift, 4>;

  Cache cache;
  typename P::template Var<size_t> header[kGranules + 1];  // size of the range based here
  typename P::template Var<unsigned> data[kGranules + 1];
  typename P::template Atomic<unsigned> holders[kGranules + 1];

  void before() {
    header[3].store(1);
    RL_ASSERT(cache.put({addr_of(3), 1}, kLimit));
  }

  void own(CachedRange r, unsigned t) {
    for (unsigned g = granule_of(r.base); g < granule_of(r.base) + r.units; ++g) {
      const unsigned before = holders[g].fetch_add(1, MemoryOrder::relaxed);
      RL_ASSERT(before == 0);  // nobody else holds the granule
      data[g].store(data[g].load() + t + 1);
    }
  }
  void disown(CachedRange r) {
    for (unsigned g = granule_of(r.base); g < granule_of(r.base) + r.units; ++g) {
      holders[g].fetch_sub(1, MemoryOrder::relaxed);
    }
  }
  // A taken range's header is the one its last owner wrote.
  void check_header(CachedRange r) { RL_ASSERT(header[granule_of(r.base)].load() == r.units); }

  // The free path: coalesce with cached neighbours, rewrite the header, put.
  void free_range(CachedRange mine, unsigned t) {
    disown(mine);
    size_t absorbed_units = 0;
    // Each neighbour taken is ours now: its header is readable, and it
    // adjoins what has been merged so far.
    const CachedRange r = cache.take_adjacent(mine, [&](CachedRange c) {
      check_header(c);
      absorbed_units += c.units;
    });
    RL_ASSERT(r.units == mine.units + absorbed_units && r.units <= kGranules);
    RL_ASSERT(r.base <= mine.base && Cache::end_of(r) >= Cache::end_of(mine));
    own(r, t);
    disown(r);
    header[granule_of(r.base)].store(r.units);
    RL_ASSERT(cache.put(r, kLimit));
  }

  void alloc_one(unsigned t) {
    const CachedRange r = cache.take(1, /*or_largest=*/true);
    if (r.empty()) return;  // all held by others at the moment
    check_header(r);
    own(r, t);
    if (r.units > 1) {  // split: the tail is a range of its own
      const CachedRange tail{r.base + addr_of(1), r.units - 1};
      disown(tail);
      header[granule_of(tail.base)].store(tail.units);
      RL_ASSERT(cache.put(tail, kLimit));
    }
    header[granule_of(r.base)].store(1);
    free_range({r.base, 1}, t);
  }

  void thread(unsigned t) {
    if (t < 2) {
      const CachedRange mine{addr_of(t + 1), 1};
      own(mine, t);
      header[t + 1].store(1);
      free_range(mine, t);
    } else {
      alloc_one(t);
      alloc_one(t);
    }
  }

  void after() {
    RL_ASSERT(cache.cached_units() == kGranules);
    unsigned covered[kGranules + 1] = {};
    for (unsigned n = 0; n < kGranules; ++n) {
      const CachedRange r = cache.take_any();
      if (r.empty()) break;
      check_header(r);
      for (unsigned g = granule_of(r.base); g < granule_of(r.base) + r.units; ++g) ++covered[g];
    }
    for (unsigned g = 1; g <= kGranules; ++g) {
      RL_ASSERT(covered[g] == 1);  // disjoint, and nothing lost
      RL_ASSERT(holders[g].load(MemoryOrder::relaxed) == 0);
    }
    RL_ASSERT(cache.take_any().empty());
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::RangeCacheRelaxedPut;
  using hakmem::lockfree::RangeCacheRelaxedTake;
  return ModelRun("range_cache_model", 200000)
      .clean<RangeCacheModel<RelacyAtomics, RangeCacheOrders>>(
          "range cache: 2 frees coalescing, 1 thread splitting, 3 granules", 2)
      .control<RangeCacheModel<RelacyAtomics, RangeCacheRelaxedTake>>(
          "range cache NEGATIVE CONTROL: RangeCacheOrders::take = relaxed", {rl::test_result_data_race})
      .control<RangeCacheModel<RelacyAtomics, RangeCacheRelaxedPut>>(
          "range cache NEGATIVE CONTROL: RangeCacheOrders::put = relaxed", {rl::test_result_data_race})
      .control<RangeCacheModel<SplitCasAtomics, RangeCacheOrders>>(
          "range cache NEGATIVE CONTROL: the claim's check skipped (CAS as load + store)",
          {rl::test_result_user_assert_failed, rl::test_result_data_race})
      .finish();
}
