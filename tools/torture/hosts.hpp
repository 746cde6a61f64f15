// hosts.hpp — --attached: one application thread per CPU attaches itself as
// the CPU's host (with --delivery and --proxy as its attach_options), runs
// its own loop, makes calls of its own from its CPU, and with
// --onoff-interval detaches and re-attaches now and then (attached CPUs'
// form of hotplug); with --attach-race a second thread attaches the same CPU
// at the same moment as each re-attach (one wins, the other must get EBUSY
// with a message). At the end each detaches and leaves.
//
// The loop, by mode:
//  - poll (the default): a little work, then xcall::poll() or, now and then,
//    xcall::idle_wait(): calls run only there (and while the host waits).
//  - --delivery signal: computations of a random 5 us .. 2 ms that never
//    poll, so calls reach the host through the doorbell signal's handler;
//    a quarter of them inside an irq_guard (calls must then wait for the
//    guard's end: the host marks "guarded" for the handler's check); a safe
//    point only every few turns; and blocking system calls (ppoll on a pipe
//    nobody writes, or nanosleep) that the signal interrupts.
//  - --delivery fd: a little work, then a wait in the host's own event loop
//    (fd_loop.hpp): epoll_wait on a set holding the CPU's doorbell fd and a
//    timerfd, inside an xcall::loop_wait, so calls run at the loop_wait's
//    end, after the doorbell fd woke the host (or its timer did). Each
//    re-attach brings a new doorbell fd: the set is rebuilt.
//  - --proxy: every few milliseconds a blocking system call of 0.5 .. 4 ms
//    inside an xcall::blocking_region (the host marks "parked"), so waiting
//    callers run its calls for it. Now and then the region is entered inside
//    an irq_guard, where it must change nothing. With --delivery fd the call
//    is half the time a wait in the host's epoll set (an inert loop_wait).
//
// Thread safety: one thread per CPU; start() returns once every CPU is
// attached; join() after run_state::stop_hosts.
#pragma once

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "run_state.hpp"
#include "xcall/domain.hpp"
#include "xcall/stats.hpp"

namespace xcall_torture {

class invoker;
class activity;
class fd_loop;

class attached_hosts {
 public:
  explicit attached_hosts(run_state& run);
  ~attached_hosts();
  attached_hosts(const attached_hosts&) = delete;
  attached_hosts& operator=(const attached_hosts&) = delete;

  /// `invokers[i]` makes CPU i's own calls.
  void start(const std::vector<invoker*>& invokers);
  void join();

 private:
  void host_main(xcall::cpu_t cpu, invoker& inv);
  /// --delivery fd: wakes hosts blocked in their event loop when they must
  /// leave (stop_hosts is set): written by join().
  void wake_fd_hosts() noexcept;
  /// Under the hotplug write lock, bracketed for the tracker; `race`:
  /// --attach-race, a second thread attaches the CPU at the same moment.
  bool attach(xcall::cpu_t cpu, xcall::cpu_attachment& att, bool race);
  bool attach_raced(xcall::cpu_t cpu, xcall::cpu_attachment& att);
  /// One attach; on failure `why` says why ("EBUSY: ..." for EBUSY).
  bool try_attach(xcall::cpu_t cpu, xcall::cpu_attachment& att, std::string& why);
  void detach(xcall::cpu_t cpu, xcall::cpu_attachment& att);
  /// --delivery signal: the host's own computation, sometimes guarded.
  void compute(xcall::cpu_t cpu, rng& r);
  /// A blocking system call of 0.5 .. 4 ms, in a blocking_region with
  /// --proxy, sometimes inside an irq_guard. `pipe_fd`: a pipe's read end
  /// nobody writes to (ppoll), or -1 (nanosleep only).
  /// `loop`: --delivery fd, the host's event loop (else null).
  void blocking_wait(xcall::cpu_t cpu, rng& r, int pipe_fd, activity& slot, fd_loop* loop);

  run_state& run_;
  int stop_fd_ = -1;  ///< --delivery fd: an eventfd in every host's set, written to stop
  std::vector<std::thread> threads_;
  std::atomic<unsigned> ready_{0};
};

/// After the run (every host gone): with --delivery signal some doorbell
/// handler must have run calls, with --delivery fd some doorbell fd write
/// must have woken a host that then ran calls, with --proxy some proxy must
/// have run calls (library counters, summed over `stats`, and the tool's);
/// runs shorter than kModeCheckMinSeconds skip that. With --delivery fd it
/// also checks that writes and wakes fit the loop_waits (doorbell-fd).
void check_modes_exercised(const run_state& run, const std::vector<xcall::cpu_stats>& stats);

/// Shorter runs may end before a mode had its chance: not judged.
inline constexpr double kModeCheckMinSeconds = 2.0;
/// ... and a run with fewer chances than this (signals sent, fd waits,
/// blocking regions entered: a slow sanitizer build with nesting makes few) does not
/// check that they were taken.
inline constexpr std::uint64_t kModeCheckMinChances = 50;

}  // namespace xcall_torture
