// cpu_state.hpp — everything a domain keeps per CPU: its call queue, its
// host's state word (the doorbell), hotplug control and the caller storage of
// its host. Private to the library.
//
// Layout: senders write the queue head; the host writes its state word and
// reads the head; they live on separate cache lines so a polling host's reads
// do not bounce the line every sender writes. What the host writes on every
// call (running, counters, its batch) has a third line: senders load the
// state word after each push that found the queue empty, and must find it
// in their cache, not pull it from a host that just counted a call.
//
// Ordering (details in doorbell.hpp and hosting.cpp):
//  - queue: push (release) / take (acquire), see call_queue.hpp;
//  - host_state: store-then-load handshake with seq_cst fences, doorbell.hpp;
//  - control: release CAS by a hotplug requester, acquire load by the host;
//  - control_done: release store by the host once it served a request,
//    acquire load by the requester (hotplug.cpp).
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cache_line.hpp"
#include "call_queue.hpp"
#include "caller_storage.hpp"
#include "counters.hpp"
#include "xcall/types.hpp"

namespace xcall::detail {

class domain_impl;

/// What the host of a CPU is doing, as senders see it.
enum host_state_value : std::uint32_t {
  kHostRunning = 0,   ///< attached host in its own code: calls wait for poll()
  kHostPolling = 1,   ///< draining or spinning on the queue: no ring needed
  kHostSleeping = 2,  ///< asleep on host_state: a sender must futex-wake it
  kHostParked = 3,    ///< attached host in a blocking_region: a waiter may proxy
  /// fd-delivery host inside a loop_wait, about to block in its event loop:
  /// a sender must write its doorbell fd (fd_doorbell.cpp)
  kHostLoopBlocked = 4,
  /// ... and a sender claimed the wake-up and writes (wrote) the fd: later
  /// senders ring nothing, as for polling
  kHostLoopWoken = 5,
  /// was sleeping; a fan-out claimed it, and its wake-up is on its way
  /// through the wake tree (wake_tree.hpp): later senders ring nothing
  kHostWakeOwed = 6,
};

/// Who may touch a CPU's host-only state (batch, storage, counters, ...):
/// the CPU's run lock. The host holds it except inside a blocking_region;
/// a proxy takes it only from kRunFree.
enum run_lock_value : std::uint32_t {
  kRunHost = 0,         ///< the host thread
  kRunFree = 1,         ///< the host is parked; nobody runs its calls
  kRunProxy = 2,        ///< a proxy runs the parked host's calls
  kRunHostWaiting = 4,  ///< flag: the host waits (futex) to leave its region
};

/// What hotplug asks of an owned CPU's thread: the low two bits of a request
/// word, whose upper 30 bits number the requests (hotplug.cpp).
enum control_value : std::uint32_t {
  kControlRun = 0,
  kControlDown = 1,
  kControlExit = 2,
  kControlNotStarted = 3,  ///< control_done before the thread first came up
};

struct alignas(kCacheLine) cpu_state {
  // ---- written by senders ----
  call_queue queue;
  classic_announcement classic_ipi;  ///< classic engine: a call block may name this CPU

  // ---- read by senders, written only when the host changes state ----
  // (sleeps, wakes, parks, hotplug): a sender's load of host_state after its
  // push hits a line that stays shared while the host polls and runs calls,
  // as the kernel's TIF_POLLING_NRFLAG does.
  alignas(kCacheLine) std::atomic<std::uint32_t> host_state{kHostPolling};
  /// The latest hotplug request word (sequence << 2 | control_value).
  std::atomic<std::uint32_t> control{kControlRun};
  /// The latest request word the host has served; futex word of requesters.
  std::atomic<std::uint32_t> control_done{kControlNotStarted};
  /// The run lock (run_lock_value). Host and proxy hand it over with
  /// release/acquire; the host sleeps on it (futex) to leave a region.
  std::atomic<std::uint32_t> run_lock{kRunHost};
  // ---- written by the host on every call ----
  /// What the host runs now (nullptr: nothing), for stall reports.
  alignas(kCacheLine) std::atomic<call_func_t> running{nullptr};
  std::atomic<bool> irqs_off{false};  ///< the host is inside an irq_guard
  cpu_counters counters;              ///< counters.hpp: who writes each, and how
  bool woken = false;                 ///< host only: the last sleep ended by a doorbell
  /// Host only: sleep mode's poll before sleeping (next_sleep_grace()).
  std::chrono::nanoseconds sleep_grace{0};
  /// Host only: descriptors taken from the queue and not run yet. Kept here,
  /// not on a drain's stack, so a nested drain (a function that waits)
  /// continues the batch instead of leaving it behind the waiting function.
  call_single_data* batch = nullptr;
  classic_walks classic;           ///< host only: the classic engine's list walks
  unsigned call_depth = 0;         ///< host only: calls in progress using `storage`
  std::uint32_t control_seen = 0;  ///< host only: the last request word taken up
  bool in_transition = false;      ///< host only: flipping online state (hotplug.cpp)

  // ---- set up once, or touched by the host thread only ----
  alignas(kCacheLine) domain_impl* dom = nullptr;
  cpu_t id = 0;
  bool owned = false;
  std::thread thread;               ///< owned CPUs
  std::mutex hotplug_mutex;         ///< only with the hotplug_mutex fault (the old bug)
  std::atomic<bool> hosted{false};  ///< attached CPUs: a thread holds it
  // How calls reach an attached host (attach_options), set by attach()
  // before the queue opens; read relaxed by senders after their push, whose
  // acquire-release CAS reads from the open (call_queue.hpp).
  std::atomic<int> doorbell_signo{0};  ///< signal delivery: the signal; 0: poll
  std::atomic<bool> proxy{false};      ///< attach_options::proxy
  /// fd delivery: the eventfd, else -1. Written only while no sender can
  /// write it (fd_doorbell.cpp): before the queue opens and after it closed.
  std::atomic<int> doorbell_fd{-1};
  std::atomic<pid_t> host_pid{0};  ///< for tgkill
  std::atomic<pid_t> host_tid{0};
  /// Caller storage by call nesting depth; host thread only.
  std::vector<std::unique_ptr<caller_storage>> storage;
  /// The host's own calls while it is parked in a blocking_region (a proxy
  /// may be using `storage` then), by nesting depth; host thread only. Not a
  /// borrowed outside slot: the callers holding those may be waiting for
  /// this very CPU, whose host would then wait for them.
  std::vector<std::unique_ptr<caller_storage>> parked_storage;
  unsigned parked_depth = 0;  ///< host thread only: parked calls in progress

  /// Whether calls may wait for this CPU: a peek, for the host's idle and
  /// wait loops (it reads host-only fields).
  bool has_calls() const noexcept {
    return batch != nullptr || classic.owed || has_queued() ||
           control.load(std::memory_order_relaxed) != control_seen;
  }
  /// The part of has_calls() that any thread may peek at: new calls.
  bool has_queued() const noexcept {
    return !queue.empty() || classic_ipi.pending.load(std::memory_order_relaxed);
  }
};

// The layout the file comment claims: the senders' line, the host's line
// and the set-up-once part each start a cache line of their own, and the
// senders' part fits in its line. (offsetof on a non-standard-layout type is
// conditionally supported; GCC and Clang support it and warn.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(alignof(cpu_state) == kCacheLine);
static_assert(offsetof(cpu_state, host_state) == kCacheLine,
              "the senders' part (queue, classic announcement) fills exactly one line");
static_assert(offsetof(cpu_state, dom) % kCacheLine == 0);
static_assert(offsetof(cpu_state, running) == 2 * kCacheLine,
              "what senders read after a push (host_state) fills one line; what the host "
              "writes for every call starts the next");
static_assert(offsetof(cpu_state, dom) > offsetof(cpu_state, in_transition));
#pragma GCC diagnostic pop

}  // namespace xcall::detail
