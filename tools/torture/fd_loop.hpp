// fd_loop.hpp — --delivery fd: an attached host's own event loop, as a
// reactor would run it. An epoll set holds the CPU's doorbell fd
// (cpu_attachment::doorbell_fd(): a new eventfd for every attachment, so the
// set is rebuilt at each re-attach), a timerfd of the host's own and the
// run's stop fd. Each loop turn the host blocks in epoll_wait inside an
// xcall::loop_wait, with a zero timeout when !may_block(); the loop_wait's
// end reads the doorbell fd (never the host) and runs the queued calls.
//
// The timer is armed at a random 0.2 .. 5 ms and stays pending across turns
// until it fires, so hosts often block with a timer pending and are woken by
// the doorbell first; one wait in four with no timer pending is left
// unarmed, so the host is woken only by the doorbell (a lost write is then a
// stall and a hang; never with --stutter, whose pauses leave hosts without
// calls, nor once the run stops: the stop fd wakes those). One wait in eight
// is made inside an irq_guard (the host marks itself "guarded"): there the
// loop_wait changes nothing, so the doorbell must stay silent and the calls
// run at the guard's end. With --proxy, the blocking call inside a parked
// blocking_region is sometimes a wait in the same set, where the loop_wait
// is inert too.
//
// Checks (doorbell-fd): every attachment has an open, non-blocking,
// close-on-exec descriptor that stays the same while it lasts and that epoll
// accepts; it is never readable outside a loop_wait (looked at now and then
// before and after one), nor in one that cannot announce (guarded, parked).
// Counts (events): fd-waits (loop_waits that announced), fd-no-block
// (may_block() false), fd-doorbell-only, fd-wakes (epoll returned the
// doorbell fd), fd-wake-runs (and the loop_wait's end ran the tool's
// functions on the host thread), timer-wakes. The end of the run compares
// them with the library's doorbell_fd_writes (hosts.cpp).
//
// Thread safety: one fd_loop per host thread, used by that thread only.
#pragma once

#include <cstdint>

#include "run_state.hpp"
#include "xcall/domain.hpp"

struct epoll_event;  // <sys/epoll.h>

namespace xcall_torture {

class activity;

class fd_loop {
 public:
  /// Builds the set with the timer and `stop_fd` (readable once the hosts
  /// must leave). On failure the check fails and wait() only polls.
  fd_loop(run_state& run, xcall::cpu_t cpu, int stop_fd);
  ~fd_loop();
  fd_loop(const fd_loop&) = delete;
  fd_loop& operator=(const fd_loop&) = delete;

  /// After each attach: checks the attachment's doorbell fd and adds it.
  void bind(const xcall::cpu_attachment& att);
  /// Before each detach (the fd is still open): removes it from the set.
  void unbind();
  /// One turn's wait: loop_wait around epoll_wait, sometimes inside an
  /// irq_guard.
  void wait(rng& r, const xcall::cpu_attachment& att, activity& slot);
  /// --proxy: the blocking call inside a blocking_region (parked, or inside
  /// a guard): about `us` microseconds in the set, in an inert loop_wait.
  void block_parked(std::uint64_t us);

 private:
  void arm(rng& r);
  void take_timer();
  /// The doorbell fd must not be readable here (outside a loop_wait).
  void check_not_readable(const char* where);
  /// epoll_wait, retried on EINTR; a failure fails the check and returns 0.
  int wait_events(::epoll_event* events, int max, int timeout_ms);

  run_state& run_;
  const xcall::cpu_t cpu_;
  int ep_ = -1;
  int timer_ = -1;
  int doorbell_ = -1;  ///< the bound attachment's doorbell fd, or -1
  bool timer_armed_ = false;
};

}  // namespace xcall_torture
