// Relacy model of a remote free racing a class expansion (invariants I1, I3),
// combining the shipped lockfree::ChunkList and lockfree::RemoteFreeList.
//
// The class's chunk list starts with one chunk. Then, concurrently:
//  - thread A (the owner) maps a new chunk -- allocated inside the thread, so
//    even its atomics are initialised there -- writes its plain header (size
//    class, block size) and each block's header (a back pointer to the chunk,
//    standing in for the 2 MiB alignment arithmetic), appends the chunk,
//    writes user data into block 0 and hands block 0 to thread B through an
//    atomic (as a malloc'd pointer passed to another thread would be); it
//    then drains the chunk's remote-free list a few times;
//  - thread B waits for the handed-off block, reads the user data, finds the
//    chunk through the block header, reads and checks the chunk header, and
//    frees the block remotely (push onto the chunk's RemoteFreeList);
//  - thread C watches current() until the new chunk is published, reads and
//    checks its header and the header of block 1, and frees block 1 remotely.
// All headers are rl::var fields: Relacy reports a data race if publication
// does not order them. At the end the owner's final drain must have seen
// blocks 0 and 1 exactly once each and block 2 (still live) never.
//
// Negative controls: the same model with
//  - ChunkListOrders::publish = relaxed (C reads an unpublished header);
//  - RemoteFreeListOrders::take = relaxed (the owner reads a freed block's
//    link without acquiring the free).
#include <cstdint>

#include "lockfree/chunk_list.h"
#include "lockfree/memory_order.h"
#include "lockfree/remote_free_list.h"
#include "model_checks/broken_orders.h"
#include "model_checks/model_runner.h"
#include "model_checks/broken_atomics.h"

namespace hakmem::model {
namespace {

using lockfree::ChunkList;
using lockfree::ChunkListHook;
using lockfree::ChunkListOrders;
using lockfree::MemoryOrder;
using lockfree::RelacyAtomics;
using lockfree::RemoteFreeList;
using lockfree::RemoteFreeListOrders;

constexpr unsigned kThreads = 3;
constexpr unsigned kOwnerThread = 0, kHandoffThread = 1, kScanThread = 2;
constexpr unsigned kBlocks = 3;
constexpr unsigned kOwnerDrains = 2;
constexpr uint32_t kOldClass = 1, kOldBlockSize = 16;
constexpr uint32_t kNewClass = 7, kNewBlockSize = 128;
constexpr uint32_t kUserData = 0x5eed;

template <class P, class CO, class RO>
struct Chunk;

template <class P, class CO, class RO>
struct Block {
  typename P::template Var<Block*> next{nullptr};
  // Block header: the chunk this block belongs to.
  typename P::template Var<Chunk<P, CO, RO>*> chunk{nullptr};
  // What the user stores in the block.
  typename P::template Var<uint32_t> data{0};
};

template <class P, class CO, class RO>
struct Chunk : ChunkListHook<Chunk<P, CO, RO>, P> {
  using B = Block<P, CO, RO>;
  typename P::template Var<uint32_t> size_class{0};
  typename P::template Var<uint32_t> block_size{0};
  RemoteFreeList<B, P, RO> remote;
  B blocks[kBlocks];

  // What a thread freeing or scanning does first: the header must be the
  // one the mapping thread wrote.
  void check_header(uint32_t klass, uint32_t block_sz) const {
    RL_ASSERT(size_class.load() == klass);
    RL_ASSERT(block_size.load() == block_sz);
  }
};

template <class P, class CO, class RO>
struct FreeVsExpansionModel : rl::test_suite<FreeVsExpansionModel<P, CO, RO>, kThreads> {
  using C = Chunk<P, CO, RO>;
  using B = Block<P, CO, RO>;
  using List = ChunkList<C, P, CO>;

  List list;
  C* old_chunk = nullptr;
  typename P::template Atomic<B*> handoff{nullptr};
  // Checker state: the mapped chunk (written by the owner, read in after())
  // and how often the owner took each of its blocks back.
  C* new_chunk = nullptr;
  unsigned drained[kBlocks] = {};

  FreeVsExpansionModel() {
    old_chunk = new C;
    old_chunk->size_class.store(kOldClass);
    old_chunk->block_size.store(kOldBlockSize);
    list.append(old_chunk);
  }

  // Owner side: takes back remotely freed blocks of `c`.
  void drain(C* c) {
    unsigned hops = 0;
    for (B* b = c->remote.take_all(); b != nullptr; b = b->next.load()) {
      RL_ASSERT(hops < kBlocks);
      if (hops++ >= kBlocks) return;
      const auto index = static_cast<unsigned>(b - c->blocks);
      RL_ASSERT(index < kBlocks);
      RL_ASSERT(b->chunk.load() == c);
      ++drained[index];
    }
  }

  void owner() {
    C* c = new C;  // "mmap" + placement: the chunk's atomics start here
    c->size_class.store(kNewClass);
    c->block_size.store(kNewBlockSize);
    for (B& b : c->blocks) b.chunk.store(c);
    new_chunk = c;
    list.append(c);
    // malloc() returned block 0; the user fills it and passes it on.
    c->blocks[0].data.store(kUserData);
    handoff.store(&c->blocks[0], MemoryOrder::release);
    for (unsigned i = 0; i < kOwnerDrains; ++i) {
      drain(c);
      P::pause();
    }
  }

  // free() of a block this thread received from the owner.
  void handoff_free() {
    B* b;
    while ((b = handoff.load(MemoryOrder::acquire)) == nullptr) P::pause();
    RL_ASSERT(b->data.load() == kUserData);
    C* c = b->chunk.load();  // classify the pointer: its chunk header
    RL_ASSERT(c != nullptr);
    if (c == nullptr) return;
    c->check_header(kNewClass, kNewBlockSize);
    c->remote.push(b);
  }

  // A thread that meets the new chunk through the class's current().
  void scan_free() {
    C* c;
    while ((c = list.current()) == old_chunk) P::pause();
    RL_ASSERT(c != nullptr);
    if (c == nullptr) return;
    c->check_header(kNewClass, kNewBlockSize);
    RL_ASSERT(List::position(c) == 1);
    B* b = &c->blocks[1];
    RL_ASSERT(b->chunk.load() == c);
    c->remote.push(b);
  }

  void thread(unsigned t) {
    if (t == kOwnerThread) {
      owner();
    } else if (t == kHandoffThread) {
      handoff_free();
    } else {
      RL_ASSERT(t == kScanThread);
      scan_free();
    }
  }

  void after() {
    RL_ASSERT(new_chunk != nullptr);
    if (new_chunk == nullptr) return;
    drain(new_chunk);
    RL_ASSERT(new_chunk->remote.empty());
    RL_ASSERT(drained[0] == 1);  // handed off and freed by B
    RL_ASSERT(drained[1] == 1);  // freed by C
    RL_ASSERT(drained[2] == 0);  // never freed
    RL_ASSERT(list.count() == 2);
    RL_ASSERT(list.current() == new_chunk);
    RL_ASSERT(List::next(old_chunk) == new_chunk);
    delete new_chunk;
    delete old_chunk;
  }
};

}  // namespace
}  // namespace hakmem::model

int main() {
  using namespace hakmem::model;
  using hakmem::lockfree::ChunkListOrders;
  using hakmem::lockfree::ChunkListRelaxedPublish;
  using hakmem::lockfree::RelacyAtomics;
  using hakmem::lockfree::RemoteFreeListOrders;
  using hakmem::lockfree::RemoteFreeListRelaxedTake;
  return ModelRun("free_vs_expansion_model", 1000000)
      .clean<FreeVsExpansionModel<RelacyAtomics, ChunkListOrders, RemoteFreeListOrders>>(
          "free racing expansion: owner maps+appends+drains, remote frees via handoff and "
          "current()",
          2)
      .control<FreeVsExpansionModel<RelacyAtomics, ChunkListRelaxedPublish, RemoteFreeListOrders>>(
          "free racing expansion NEGATIVE CONTROL: ChunkListOrders::publish = relaxed",
          {rl::test_result_data_race, rl::test_result_unitialized_access})
      .control<FreeVsExpansionModel<RelacyAtomics, ChunkListOrders, RemoteFreeListRelaxedTake>>(
          "free racing expansion NEGATIVE CONTROL: RemoteFreeListOrders::take = relaxed",
          {rl::test_result_data_race})
      .finish();
}
