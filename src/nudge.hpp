// nudge.hpp — what a waiter does for targets that cannot hear a doorbell on
// their own: run a parked host's calls as its proxy, and re-send a doorbell
// signal that may have been lost (peers learned both the hard way: signals
// get lost, a blocked thread must not stall its callers). Private.
//
// A nudge is cheap to build and does nothing unless the domain has attached
// CPUs with signal delivery or proxy on. The spin phase of a wait calls
// help() now and then (proxying only); the sleep phase caps its sleeps with
// budget() and calls tick() after each, which re-sends at doubling intervals
// while the call makes no progress.
//
// Waits nest: a wait runs functions (its own CPU's, a parked target's as its
// proxy), and a function may wait or poll in turn. The nudges of a thread's
// waits in progress form a stack (thread_context::waits), and help() helps
// every one of them, innermost first: a function run inside a wait may be
// waiting for a parked CPU that only an outer wait owes (two parked targets
// of one fan-out whose functions wait for each other: the caller runs the
// first as its proxy, and the first's wait must run the second).
// xcall::poll() helps the stack too (help_waits()); idle_wait() does not.
//
// Ordering: reads the targets' host_state and delivery fields relaxed; the
// proxy hand-over is proxy.cpp's run lock, the signal is signal_doorbell.cpp.
#pragma once

#include <chrono>

#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"

namespace xcall::detail {

class domain_impl;
struct thread_context;

/// A proxy that waits inside a borrowed CPU's call cannot hear its own CPU's
/// doorbell; it looks at its own queue this often.
inline constexpr std::chrono::nanoseconds kProxyNap = std::chrono::microseconds(200);

class target_nudge {
 public:
  /// `owing`: the live mask of CPUs that still owe the call (a classic call
  /// block), or nullptr: the descriptor's own target.
  target_nudge(domain_impl& dom, call_single_data& csd, const cpumask* owing) noexcept;
  ~target_nudge();
  target_nudge(const target_nudge&) = delete;
  target_nudge& operator=(const target_nudge&) = delete;

  /// Runs the calls of parked proxy targets, this wait's and every outer
  /// wait's of this thread. Returns whether it ran any.
  bool help() noexcept;
  /// How long the waiter may sleep before tick(); negative: no limit.
  std::chrono::nanoseconds budget() const noexcept;
  /// After a sleep: helps, and re-sends the doorbell signal to targets that
  /// are running their own code when the interval has passed.
  void tick() noexcept;

 private:
  using clock = std::chrono::steady_clock;
  template <class F>
  void for_each_target(F&& f) const;
  /// This wait's own targets only.
  bool help_own() noexcept;

  domain_impl& dom_;
  call_single_data& csd_;
  const cpumask* const owing_;
  const bool active_;
  target_nudge* const outer_;  ///< the wait this one runs inside, on this thread
  std::chrono::nanoseconds interval_;
  clock::time_point next_{};
};

/// Helps the parked targets of every wait in progress on this thread (from
/// poll(), which a function may call inside a wait).
void help_waits(thread_context& ctx) noexcept;

}  // namespace xcall::detail
