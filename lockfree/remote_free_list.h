// RemoteFreeList: an intrusive lock-free stack with many producers (push)
// and a single consumer that takes every node at once (take_all).
//
// Producers are threads freeing blocks they do not own; the consumer is the
// owner of the slab. Because the consumer never pops single nodes there is
// no ABA problem: take_all replaces the head with null in one exchange.
//
// Nodes are linked through a member of type P::Var<Node*>: `next` by
// default, another one named by the `Link` parameter.
#pragma once

#include <source_location>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"

namespace hakmem::lockfree {

// Memory orders of RemoteFreeList; a parameter only so model checks can show
// a weakened list is caught.
struct RemoteFreeListOrders {
  // The push CAS publishes the node's link (and the producer's last writes
  // to the block) to the consumer.
  static constexpr MemoryOrder push = MemoryOrder::release;
  // The consumer's exchange acquires every push before it: each push CAS is
  // an RMW, so it continues the release sequence of the pushes under it.
  static constexpr MemoryOrder take = MemoryOrder::acquire;
};

template <class Node, class P = DefaultAtomics, class Orders = RemoteFreeListOrders,
          auto Link = &Node::next>
class RemoteFreeList {
 public:
  using Loc = std::source_location;

  RemoteFreeList() = default;
  RemoteFreeList(const RemoteFreeList&) = delete;
  RemoteFreeList& operator=(const RemoteFreeList&) = delete;

  // Pushes one node. Returns true if the list was empty before.
  // Linearization point: the successful CAS on head (release). The first
  // load and a failed CAS are relaxed: the head value is only used as the
  // node's link, which the successful CAS then publishes.
  bool push(Node* node, Loc loc = Loc::current()) {
    return push_chain(node, node, loc);
  }

  // Pushes a pre-linked chain first..last (last->next is overwritten).
  bool push_chain(Node* first, Node* last, Loc loc = Loc::current()) {
    Node* head = head_.load(MemoryOrder::relaxed, loc);
    for (;;) {
      (last->*Link).store(head, loc);
      if (head_.compare_exchange_weak(head, first, Orders::push, MemoryOrder::relaxed, loc)) {
        return head == nullptr;
      }
      P::pause();
    }
  }

  // Takes every node pushed so far, newest first, as a null-terminated chain
  // linked through Link. Linearization point: the exchange (acquire).
  Node* take_all(Loc loc = Loc::current()) {
    if (head_.load(MemoryOrder::relaxed, loc) == nullptr) return nullptr;
    return head_.exchange(nullptr, Orders::take, loc);
  }

  // The newest node, loaded with `order`, without taking anything. Nodes
  // under the head are never relinked by a push (a producer writes only the
  // link of a node it is pushing), only by the consumer that took them, so
  // a thread that excludes the consumer may walk the chain it returns.
  Node* peek(MemoryOrder order, Loc loc = Loc::current()) const {
    return head_.load(order, loc);
  }

  // A relaxed emptiness hint.
  bool empty(Loc loc = Loc::current()) const {
    return head_.load(MemoryOrder::relaxed, loc) == nullptr;
  }

 private:
  typename P::template Atomic<Node*> head_{nullptr};
};

}  // namespace hakmem::lockfree
