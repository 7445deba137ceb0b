// NotifyQueue: "this node has news for you", delivered at most once.
//
// Many producers notify(node); one consumer drain()s and visits every node
// notified since its last drain. A node is in the queue at most once: the
// producer that flips the node's `notify_queued` flag from 0 to 1 links it,
// everyone else sees the flag set and does nothing (the node is already on
// its way). The consumer reads a node's link before clearing its flag, so a
// producer can only relink a node the consumer has finished with.
//
// hakmem uses it to tell a slab's owner which of its slabs received remote
// frees, so the owner need not scan all of them.
//
// Node needs `notify_next` (P::Var<Node*>) and `notify_queued`
// (P::Atomic<uint8_t>).
#pragma once

#include <cstdint>
#include <source_location>

#include "lockfree/default_atomics.h"
#include "lockfree/memory_order.h"
#include "lockfree/remote_free_list.h"

namespace hakmem::lockfree {

// Memory orders of NotifyQueue; a parameter only so model checks can show a
// weakened queue is caught.
struct NotifyQueueOrders {
  // Winning the flag must see the consumer's read of the link (which
  // happened before it cleared the flag), so the relink cannot race it:
  // acquire on the producer's exchange, release on the consumer's clear.
  static constexpr MemoryOrder claim = MemoryOrder::acq_rel;
  static constexpr MemoryOrder clear = MemoryOrder::release;
};

template <class Node, class P = DefaultAtomics, class Orders = NotifyQueueOrders>
class NotifyQueue {
 public:
  using Loc = std::source_location;

  // Returns true if this call queued the node, false if it already was.
  // Linearization point: the exchange on the node's flag; when it returns 0
  // the push onto the list (a RemoteFreeList push, release) follows.
  bool notify(Node* node, Loc loc = Loc::current()) {
    if (!try_claim(node, loc)) return false;
    list_.push(node, loc);
    return true;
  }

  // notify() in two steps, for a producer that learns which queue to use
  // only after winning the flag: try_claim() (the exchange), then either
  // push_claimed() onto the chosen queue or unclaim() if there is none.
  static bool try_claim(Node* node, Loc loc = Loc::current()) {
    return node->notify_queued.exchange(1, Orders::claim, loc) == 0;
  }
  void push_claimed(Node* node, Loc loc = Loc::current()) { list_.push(node, loc); }
  static void unclaim(Node* node, Loc loc = Loc::current()) {
    node->notify_queued.store(0, Orders::clear, loc);
  }

  // Visits every queued node once; each may be notified again as soon as it
  // is visited. Linearization point: the list's take_all (acquire).
  template <class F>
  void drain(F&& visit, Loc loc = Loc::current()) {
    Node* node = list_.take_all(loc);
    while (node != nullptr) {
      Node* next = node->notify_next.load(loc);
      node->notify_queued.store(0, Orders::clear, loc);
      visit(node);
      node = next;
    }
  }

  bool empty(Loc loc = Loc::current()) const { return list_.empty(loc); }

 private:
  RemoteFreeList<Node, P, RemoteFreeListOrders, &Node::notify_next> list_;
};

}  // namespace hakmem::lockfree
