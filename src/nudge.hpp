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
// Ordering: reads the targets' host_state and delivery fields relaxed; the
// proxy hand-over is proxy.cpp's run lock, the signal is signal_doorbell.cpp.
#pragma once

#include <chrono>

#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"

namespace xcall::detail {

class domain_impl;

/// A proxy that waits inside a borrowed CPU's call cannot hear its own CPU's
/// doorbell; it looks at its own queue this often.
inline constexpr std::chrono::nanoseconds kProxyNap = std::chrono::microseconds(200);

class target_nudge {
 public:
  /// `owing`: the live mask of CPUs that still owe the call (a classic call
  /// block), or nullptr: the descriptor's own target.
  target_nudge(domain_impl& dom, call_single_data& csd, const cpumask* owing) noexcept;

  /// Runs the calls of parked proxy targets. Returns whether it ran any.
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

  domain_impl& dom_;
  call_single_data& csd_;
  const cpumask* const owing_;
  const bool active_;
  std::chrono::nanoseconds interval_;
  clock::time_point next_{};
};

}  // namespace xcall::detail
