// stall_watch.hpp — the stall watchdog of one wait (the kernel's
// csd_lock_wait_toolong). Private to the library.
//
// A waiter builds one after its spin phase, sleeps at most budget() at a time
// and calls check() after every wake-up; check() reports when the wait has
// lasted stall_timeout, then at doubling intervals, and rings the target's
// doorbell again each time. The destructor reports "unstuck" when anything
// was reported. Nothing here runs on the fast path.
//
// Ordering: reads the target's diagnostics (host_state, running, irqs_off,
// queue length) relaxed: a report is a best-effort picture of a moment.
#pragma once

#include <chrono>

#include "xcall/csd.hpp"
#include "xcall/stall.hpp"

namespace xcall::detail {

class domain_impl;

class stall_watch {
 public:
  stall_watch(domain_impl& dom, call_single_data& csd) noexcept;
  ~stall_watch();
  stall_watch(const stall_watch&) = delete;
  stall_watch& operator=(const stall_watch&) = delete;

  /// How long the waiter may sleep before the next check; negative: no limit.
  std::chrono::nanoseconds budget() const noexcept;
  /// Reports, and rings the target again, when a report is due.
  void check() noexcept;

 private:
  using clock = std::chrono::steady_clock;
  stall_report snapshot(bool unstuck, clock::time_point now) const;

  domain_impl& dom_;
  call_single_data& csd_;
  const call_func_t func_;
  void* const info_;
  const cpu_t target_;
  const bool enabled_;
  const clock::time_point start_;
  clock::time_point next_;
  std::chrono::nanoseconds interval_;
  unsigned reports_ = 0;
};

}  // namespace xcall::detail
