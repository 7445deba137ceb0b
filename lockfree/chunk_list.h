// ChunkList: an append-only, lock-free singly linked list with an atomically
// published "current" node and a node count.
//
// Nodes are owned by the caller (hakmem maps them) and embed a ChunkListHook.
// A node is fully initialised before append() links it, and the link is a
// release CAS, so any thread that reaches the node through first(), current()
// or next() (all acquire loads) sees its initialised fields.
//
// Nodes are never unlinked, so there is no reclamation and no ABA problem.
// `current` only moves forward (by list position) and only to linked nodes.
#pragma once

#include <cstdint>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

// Memory orders of ChunkList. They are a parameter only so that the model
// checks can instantiate a deliberately weakened list and show that Relacy
// catches it; production uses these.
struct ChunkListOrders {
  // Linking a node (CAS on tail->next / first) and publishing `current`:
  // release, so the node's initialisation happens-before any reader.
  static constexpr MemoryOrder publish = MemoryOrder::release;
  // Loads of first/current/next: acquire, pairing with `publish`.
  static constexpr MemoryOrder observe = MemoryOrder::acquire;
};

template <class Node, class P>
struct ChunkListHook {
  typename P::template Atomic<Node*> chunk_next{nullptr};
  // Position in the list (0 = first). Written only before the node is
  // linked, read only after it was reached through an acquire load.
  typename P::template Var<uint64_t> chunk_position{0};
};

template <class Node, class P = DefaultAtomics, class Orders = ChunkListOrders>
class ChunkList {
 public:
  using Loc = std::source_location;

  ChunkList() = default;
  ChunkList(const ChunkList&) = delete;
  ChunkList& operator=(const ChunkList&) = delete;

  // Links `node` (initialised, chunk_next null) at the tail and advances
  // `current` to it unless another thread already moved `current` further.
  // Returns the node's position.
  //
  // Linearization point: the successful CAS that installs `node` (on `first_`
  // when the list is empty, else on the tail's chunk_next), release so the
  // node's contents are published with it. A losing thread does not drop its
  // node: the CAS returns the winner, which is the new tail candidate, and the
  // thread retries from there. Lock-free: a CAS fails only because another
  // append succeeded.
  uint64_t append(Node* node, Loc loc = Loc::current()) {
    Node* tail = current_.load(Orders::observe, loc);
    if (tail == nullptr) {
      node->chunk_position.store(0, loc);
      Node* expected = nullptr;
      if (first_.compare_exchange_strong(expected, node, Orders::publish, Orders::observe, loc)) {
        return finish_append(node, 0, loc);
      }
      tail = expected;  // someone else linked the first node
    }
    for (;;) {
      Node* next = tail->chunk_next.load(Orders::observe, loc);
      if (next != nullptr) {  // not the tail (any more): follow the list
        tail = next;
        continue;
      }
      const uint64_t position = tail->chunk_position.load(loc) + 1;
      node->chunk_position.store(position, loc);
      Node* expected = nullptr;
      if (tail->chunk_next.compare_exchange_strong(expected, node, Orders::publish,
                                                   Orders::observe, loc)) {
        return finish_append(node, position, loc);
      }
      tail = expected;
      P::pause();
    }
  }

  // Moves `current` forward to `node` (which must be linked); never moves it
  // backwards. Linearization point: the successful CAS (release, publishing
  // the node's contents to readers of current()). On failure the CAS
  // re-reads `current` with acquire, because the loop then reads that node's
  // position.
  void advance_current(Node* node, Loc loc = Loc::current()) {
    const uint64_t target = node->chunk_position.load(loc);
    Node* cur = current_.load(Orders::observe, loc);
    while (cur == nullptr || cur->chunk_position.load(loc) < target) {
      if (current_.compare_exchange_weak(cur, node, Orders::publish, Orders::observe, loc)) {
        return;
      }
    }
  }

  Node* first(Loc loc = Loc::current()) const { return first_.load(Orders::observe, loc); }
  Node* current(Loc loc = Loc::current()) const { return current_.load(Orders::observe, loc); }
  static Node* next(const Node* node, Loc loc = Loc::current()) {
    return node->chunk_next.load(Orders::observe, loc);
  }
  static uint64_t position(const Node* node, Loc loc = Loc::current()) {
    return node->chunk_position.load(loc);
  }

  // Number of linked nodes. Incremented right after each link, so it equals
  // the number of linked nodes whenever no append is in flight.
  uint64_t count(Loc loc = Loc::current()) const {
    return count_.load(MemoryOrder::relaxed, loc);
  }

 private:
  uint64_t finish_append(Node* node, uint64_t position, Loc loc) {
    // Relaxed: the count carries no data; readers needing the nodes walk
    // the list with acquire loads.
    count_.fetch_add(1, MemoryOrder::relaxed, loc);
    advance_current(node, loc);
    return position;
  }

  typename P::template Atomic<Node*> first_{nullptr};
  typename P::template Atomic<Node*> current_{nullptr};
  typename P::template Atomic<uint64_t> count_{0};
};

}  // namespace hakmem::lockfree
