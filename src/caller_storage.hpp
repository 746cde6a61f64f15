// caller_storage.hpp — the descriptors a caller owns for calls that do not
// keep them on its stack: the no-wait single call and every multi-CPU call
// (the kernel's per-CPU csd_data and call_function_data). Private.
//
// A host CPU has one per nesting depth (a function run while its host waits
// may itself call); outside callers borrow one from the domain's slot pool.
// The single descriptor is there from the start; the per-target array is
// allocated by the first multi-CPU call, so a domain of N CPUs costs O(N)
// until its callers actually fan out. Allocations do not throw (alloc.hpp):
// a call that cannot get its storage reports not_enough_memory.
//
// Ordering: none of its own; each descriptor follows csd_ops.hpp.
#pragma once

#include <memory>

#include "alloc.hpp"
#include "cache_line.hpp"
#include "classic_engine.hpp"

#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"

namespace xcall::detail {

/// One descriptor per cache line: each target writes its own descriptor's
/// flags when it releases it, and targets must not false-share.
struct alignas(kCacheLine) padded_csd {
  call_single_data csd;
};
static_assert(sizeof(padded_csd) == kCacheLine, "one descriptor per cache line");

struct caller_storage {
  explicit caller_storage(cpu_t nr_cpus) : targets(nr_cpus), nr_cpus_(nr_cpus) {}

  cpu_t nr_cpus() const noexcept { return nr_cpus_; }

  /// The per-target descriptors, allocated on first use; nullptr when that
  /// allocation fails.
  padded_csd* many() noexcept {
    if (!many_) many_ = try_make_array<padded_csd>(nr_cpus_);
    return many_.get();
  }

  /// The fan-out's private mask of CPUs to ring (fan_out_doorbell.hpp),
  /// allocated on first use like the descriptors; nullptr when that fails.
  cpumask* ring_mask() noexcept {
    if (!ring_mask_) ring_mask_ = try_make<cpumask>(nr_cpus_);
    return ring_mask_.get();
  }

  /// No descriptor of this storage is in flight: a call may use it without
  /// waiting (csd_lock) for an earlier call. Owner only (only the owner
  /// locks them, so the answer stays true until it queues).
  bool idle() const noexcept {
    if (single.in_flight()) return false;
    if (classic.in_flight()) return false;
    if (many_) {
      for (cpu_t c = 0; c < nr_cpus_; ++c) {
        if (many_[c].csd.in_flight()) return false;
      }
    }
    return true;
  }

  call_single_data single;  ///< no-wait call_function_single
  /// percpu: the private snapshot `mask & online - self` (narrowed by cond);
  /// classic: the mask a cond call hands to the engine (the engine's own
  /// snapshot is its call block's live mask)
  cpumask targets;
  classic_caller classic;  ///< the classic engine's call block

 private:
  cpu_t nr_cpus_;
  std::unique_ptr<padded_csd[]> many_;
  std::unique_ptr<cpumask> ring_mask_;
};

}  // namespace xcall::detail
