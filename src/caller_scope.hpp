// caller_scope.hpp — how a call finds the caller storage it uses for the
// length of the call (outside_slots.cpp). Private to the library.
//
// Ordering: outside_slots.cpp (the slot pool's acquire/release).
#pragma once

#include <memory>
#include <system_error>
#include <vector>

#include "domain_impl.hpp"
#include "thread_context.hpp"

namespace xcall::detail {

/// The caller storage a call may use: the host's at the current nesting
/// depth (a host parked in a blocking_region: its parked storage), or a
/// borrowed outside slot. RAII: gives it back at scope end.
/// False when there is none (error() says why; nothing is held then).
///
/// A host's call must not wait for ever for an earlier no-wait call through
/// the same storage when that call's function may be waiting for a function
/// below us on this very thread (the kernel, whose handlers never wait, has
/// no such cycle): a classic call block whose functions run while it stays
/// locked, or any earlier call while we are inside an irq_guard (we run
/// none of our own calls then). In those cases a host gives the earlier call
/// a grace period (domain_impl::kStorageGrace), then takes the first idle
/// storage beyond its current depth, up to kSpareDepths further, and only
/// when all are in flight waits for the first (the kernel's csd_lock
/// backpressure) or, inside an irq_guard, reports
/// resource_deadlock_would_occur.
class caller_scope {
 public:
  static constexpr unsigned kSpareDepths = 8;

  explicit caller_scope(domain_impl& dom) noexcept;
  ~caller_scope();
  caller_scope(const caller_scope&) = delete;
  caller_scope& operator=(const caller_scope&) = delete;
  explicit operator bool() const noexcept { return storage_ != nullptr; }
  [[nodiscard]] std::error_code error() const noexcept { return error_; }
  caller_storage& storage() noexcept { return *storage_; }

 private:
  using storage_stack = std::vector<std::unique_ptr<caller_storage>>;
  /// Uses `stack` at depth `depth_now` (raised for the scope), or a spare.
  void use_stack(domain_impl& dom, storage_stack& stack, unsigned& depth_now,
                 bool guarded) noexcept;

  domain_impl& dom_;
  doorbell_mask mask_;  ///< first in, last out: covers every use of storage_
  outside_slot* slot_ = nullptr;
  unsigned* depth_ = nullptr;  ///< the depth we raised (a CPU's call or parked depth)
  unsigned saved_depth_ = 0;   ///< *depth_ before us
  caller_storage* storage_ = nullptr;
  std::error_code error_;
};

}  // namespace xcall::detail
