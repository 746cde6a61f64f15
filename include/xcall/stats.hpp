// xcall/stats.hpp — per-CPU counters of a domain, and a formatter that prints
// them like the "Function call interrupts" row of /proc/interrupts.
//
// Thread safety: domain::stats() may be called from any thread at any time;
// it reads each counter once (relaxed), so a snapshot taken while calls run
// is consistent per counter, not across counters.
//
// Cost: every counter is written by one thread on a cache line it already
// owns (the host's own line, or the target's queue line the sender writes
// anyway), so counting adds no cache-line transfer to the fast path.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "xcall/export.h"
#include "xcall/types.hpp"

namespace xcall {

struct cpu_stats {
  cpu_t cpu = no_cpu;
  bool online = false;
  /// Functions run for calls sent to this CPU (drained, by a proxy, or while
  /// dying); local copies run by their caller (self-addressed calls, the
  /// caller's own part of on_each_cpu*) are not counted.
  std::uint64_t calls_run = 0;
  /// Futex wakes someone paid for because the host slept: a call's doorbell,
  /// a hotplug request, a stall report's re-ring, or the release of a call
  /// the host slept waiting for.
  std::uint64_t doorbells_rung = 0;
  std::uint64_t doorbells_saved = 0;   ///< batches found while polling: no wake needed
  std::uint64_t sleeps = 0;            ///< times the host went to sleep
  std::uint64_t drained_on_down = 0;   ///< calls run while going offline (also in calls_run)
  std::uint64_t stalls_reported = 0;   ///< stall reports naming this CPU as the target
  std::uint64_t signals_sent = 0;      ///< doorbell signals sent to its host (signal delivery)
  std::uint64_t signals_resent = 0;    ///< of those, re-sent by a waiter that saw no progress
  std::uint64_t signal_runs = 0;       ///< doorbell signal handlers that ran the queue
  std::uint64_t signals_deferred = 0;  ///< handlers that found irqs off or the queue running
  std::uint64_t proxy_runs = 0;        ///< calls run by a proxy while the host was parked
  /// Doorbell fd writes (delivery_mode::fd): a sender, a hotplug request or a
  /// stall report's re-ring found the host blocked in its event loop.
  std::uint64_t doorbell_fd_writes = 0;
  /// Futex wakes this CPU's host made for other CPUs of a multi-CPU call,
  /// having been woken by it itself (the wake tree: the caller wakes a few
  /// sleeping targets, they wake the next ones). Also counted, once each, in
  /// the woken CPUs' doorbells_rung.
  std::uint64_t wakes_relayed = 0;
};

/// Rows like /proc/interrupts: a header of CPU columns ("CPU3-" for a CPU
/// offline at the snapshot), then one row per counter, each with a short code
/// and a description, in this order: CFR calls_run, DBR doorbells_rung, DBS
/// doorbells_saved, SLP sleeps, DWN drained_on_down, STL stalls_reported, SIG
/// signals_sent, SRS signals_resent, SHR signal_runs, SDF signals_deferred,
/// PXY proxy_runs, DFW doorbell_fd_writes, RLY wakes_relayed. Wraps to several blocks of `columns`
/// CPUs (0 counts as 1) for wide domains.
XCALL_EXPORT std::string format_stats(std::span<const cpu_stats> stats, unsigned columns = 16);

}  // namespace xcall
