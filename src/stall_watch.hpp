// stall_watch.hpp — the stall watchdog of one wait (the kernel's
// csd_lock_wait_toolong). Private to the library.
//
// A waiter builds one after its spin phase, sleeps at most budget() at a time
// and calls check() after every wake-up; check() reports when the wait has
// lasted stall_timeout, then at doubling intervals, and rings the target's
// doorbell again each time. The destructor reports "unstuck" when anything
// was reported. Nothing here runs on the fast path: the one extra wake-up,
// shortly before the first report, reads the target host's scheduler
// statistics so that the report can say whether it was starved.
//
// Ordering: reads the target's diagnostics (host_state, running, irqs_off,
// queue length) relaxed: a report is a best-effort picture of a moment.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>

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
  stall_report snapshot(bool unstuck, clock::time_point now);
  /// The target's host as the scheduler sees it, and its runnable time
  /// since the previous sample (the report's target_sched_window).
  void sample_scheduler(stall_report& r, clock::time_point now) noexcept;

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
  // The scheduler sample the next report measures from: taken shortly
  // before the first report (sample_at_), then at every report.
  clock::time_point sample_at_;
  clock::time_point sampled_when_{};
  pid_t sampled_tid_ = 0;
  std::int64_t sampled_delay_ = -1;
};

}  // namespace xcall::detail
