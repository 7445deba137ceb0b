// NotifyQueue: "this node has news for you", delivered at most once.
//
// Many producers notify(node); one consumer drain()s and visits every node
// notified since its last drain. A node is in the queue at most once: the
// producer that flips the node's `notify_queued` flag from 0 to 1 links it,
// everyone else sees the flag set and does nothing (the node is already on
// its way). The consumer reads a node's link before clearing its flag, so a
// producer can only relink a node the consumer has finished with.
//
// No lost wakeup: a producer that finds the flag set relies on the consumer
// seeing whatever it did before (e.g. a push onto the node's remote list)
// when it visits the node. The consumer's clear is therefore an exchange
// (acq_rel), not a store: it reads the latest flag value, and every producer
// exchange that found the flag set heads a release sequence of exchanges
// that the clear continues, so those producers' earlier writes happen before
// the visit. With a plain release store, the consumer's visit could read the
// node's remote list before a producer's push that the producer's exchange
// (reading 1) had already ordered before the clear -- store buffering, which
// x86 allows between the clear (a plain store) and the visit's load -- and
// that block would sit on the list with the node no longer queued (found by
// model_checks/notify_queue_model).
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
  // The producer's exchange also releases, and the consumer's clear (an
  // exchange) also acquires, so that a producer that found the flag set has
  // its earlier writes seen by the consumer's visit (no lost wakeup).
  static constexpr MemoryOrder claim = MemoryOrder::acq_rel;
  static constexpr MemoryOrder clear = MemoryOrder::acq_rel;
  // unclaim() publishes the claimer's acquisition of the consumer's last
  // read of the link to the next claimer: a claimer whose exchange reads
  // this store then links the node with that read ordered before its link
  // store. Relacy cannot show this order is needed: it follows C++11
  // release sequences, in which a store by the thread that did a release
  // RMW (here the claim) continues that RMW's release sequence, so a
  // relaxed unclaim is covered by the claim's release (a model of exactly
  // drain / claim+unclaim / claim+link found no race with it relaxed in
  // 1,000,000 executions). C++20, which hakmem is built as, dropped that
  // rule: under it a relaxed unclaim leaves the next claimer's link store
  // unordered with the consumer's read, so the release stays. ThreadSanitizer
  // does report that race: with this order relaxed,
  // tests/core/alloc:tsan_stress_test fails under --config=tsan (its
  // heapless frees into abandoned slabs claim and unclaim).
  static constexpr MemoryOrder unclaim = MemoryOrder::release;
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
  // A producer that found the flag set while it was claimed by an unclaim()
  // caller is not seen by anyone: unclaim() is for a node whose news the
  // caller knows will be collected another way.
  static void unclaim(Node* node, Loc loc = Loc::current()) {
    node->notify_queued.store(0, Orders::unclaim, loc);
  }

  // Visits every queued node once; each may be notified again as soon as it
  // is visited, and the visit sees everything done before any notify() that
  // found the node queued. Linearization point: the list's take_all
  // (acquire).
  template <class F>
  void drain(F&& visit, Loc loc = Loc::current()) {
    Node* node = list_.take_all(loc);
    while (node != nullptr) {
      Node* next = node->notify_next.load(loc);
      node->notify_queued.exchange(0, Orders::clear, loc);
      visit(node);
      node = next;
    }
  }

  bool empty(Loc loc = Loc::current()) const { return list_.empty(loc); }

 private:
  RemoteFreeList<Node, P, RemoteFreeListOrders, &Node::notify_next> list_;
};

}  // namespace hakmem::lockfree
