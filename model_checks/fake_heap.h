// FakeHeap: what the protocol templates of core/heap need of a thread heap
// (ThreadHeap, core/heap/thread_heap.h), for the models that instantiate
// them: `remote_notices` (a NotifyQueue of slabs) and `remote_batch` (a
// batching heap's pending remote frees, one slot per class; the models'
// slabs are class 0).
//
// Includes only core/ and lockfree/ headers: include it before
// model_runner.h (see relacy_atomics.h on include order).
#pragma once

#include "core/heap/remote_free_protocol.h"
#include "core/meta/slab.h"
#include "lockfree/notify_queue.h"

namespace hakmem::model {

inline constexpr unsigned kFakeHeapSlots = 2;  // classes 0 and 1

template <class P, class SlabOrders>
struct FakeHeap;

template <class P, class SlabOrders>
using ModelSlab = BasicSlab<P, FakeHeap<P, SlabOrders>, SlabOrders>;

template <class P, class SlabOrders>
struct FakeHeap {
  using Slab = ModelSlab<P, SlabOrders>;
  lockfree::NotifyQueue<Slab, P> remote_notices;
  BasicRemoteBatch<Slab, kFakeHeapSlots> remote_batch;
  FakeHeap() { remote_batch.reset(true); }
};

// A free block's tag in the models.
constexpr uintptr_t tag_of(unsigned id) { return 0x7a600000u + id; }

}  // namespace hakmem::model
