// Memory-order policies for the models' negative controls: the shipped
// orders of a lock-free template with one of them weakened to relaxed.
// Instantiating the template with one of these must make Relacy report a
// data race; if it does not, the model cannot see what that order protects.
//
// Includes only lockfree/ headers: include it before model_runner.h (see
// relacy_atomics.h on include order).
#pragma once

#include "lockfree/chunk_list.h"
#include "lockfree/memory_order.h"
#include "lockfree/range_cache.h"
#include "lockfree/remote_free_list.h"
#include "lockfree/slab_bitmap.h"

namespace hakmem::lockfree {

struct ChunkListRelaxedPublish {
  static constexpr MemoryOrder publish = MemoryOrder::relaxed;
  static constexpr MemoryOrder observe = ChunkListOrders::observe;
};

struct RemoteFreeListRelaxedPush {
  static constexpr MemoryOrder push = MemoryOrder::relaxed;
  static constexpr MemoryOrder take = RemoteFreeListOrders::take;
};

struct RemoteFreeListRelaxedTake {
  static constexpr MemoryOrder push = RemoteFreeListOrders::push;
  static constexpr MemoryOrder take = MemoryOrder::relaxed;
};

struct SlabBitmapRelaxedClaim {
  static constexpr MemoryOrder claim = MemoryOrder::relaxed;
  static constexpr MemoryOrder release = SlabBitmapOrders::release;
};

struct SlabBitmapRelaxedRelease {
  static constexpr MemoryOrder claim = SlabBitmapOrders::claim;
  static constexpr MemoryOrder release = MemoryOrder::relaxed;
};

struct RangeCacheRelaxedTake {
  static constexpr MemoryOrder take = MemoryOrder::relaxed;
  static constexpr MemoryOrder put = RangeCacheOrders::put;
};

struct RangeCacheRelaxedPut {
  static constexpr MemoryOrder take = RangeCacheOrders::take;
  static constexpr MemoryOrder put = MemoryOrder::relaxed;
};

}  // namespace hakmem::lockfree
