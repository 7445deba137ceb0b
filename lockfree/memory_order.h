// Memory orders shared by every atomics policy.
//
// The lock-free templates in this folder are written once against an
// "atomics policy" (see boost_atomics.h for the contract) so that the code
// Relacy model-checks is the code that ships. This enum is the policy-neutral
// spelling of the C++ memory orders; each policy maps it to its backend.
#pragma once

namespace hakmem::lockfree {

enum class MemoryOrder { relaxed, acquire, release, acq_rel, seq_cst };

// The order a failed compare-exchange may use given the success order.
constexpr MemoryOrder failure_order_for(MemoryOrder success) {
  switch (success) {
    case MemoryOrder::acq_rel:
      return MemoryOrder::acquire;
    case MemoryOrder::release:
      return MemoryOrder::relaxed;
    default:
      return success;
  }
}

}  // namespace hakmem::lockfree
