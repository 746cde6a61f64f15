// host_marks.hpp — what the attached hosts publish about themselves so that
// the tool's functions can check where and when they run (--attached):
//  - which thread is the tool's host thread of which CPU (thread-local);
//  - whether a host is inside its irq_guard-ed computation ("guarded"): no
//    call for its CPU may run then, neither from the doorbell signal's
//    handler nor by a proxy — they run after the guard;
//  - whether a host is parked in a blocking_region ("parked"): only then may
//    another thread (a proxy) run its CPU's calls, and only then must the
//    host thread itself run none (inside the region it is an outside caller).
//
// Thread safety: a CPU's marks are written by its host thread only and read
// by any thread that runs a call for that CPU.
//
// Memory ordering: relaxed loads and stores, with std::atomic_signal_fence
// on the host's side. Two kinds of reader:
//  - the host's own thread, in the doorbell signal's handler: same thread,
//    so the signal fences order the mark against the code it brackets;
//  - a proxy on another thread: it runs the CPU's calls only between the
//    host's park and unpark, and the library hands the CPU over with
//    release/acquire there (the run lock). "parked" is set before the
//    region begins and cleared after it ends, so a proxy always reads it
//    set; "guarded" set before a region entered inside the guard is read
//    set by a proxy the library (wrongly) let in.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "xcall/types.hpp"

namespace xcall_torture {

class host_marks {
 public:
  explicit host_marks(xcall::cpu_t nr_cpus);

  /// The calling thread is the tool's host thread of `cpu` from now on
  /// (whether or not it is attached at a given moment).
  static void claim(xcall::cpu_t cpu) noexcept;
  /// The CPU whose host thread the caller is, or no_cpu.
  static xcall::cpu_t mine() noexcept;

  /// Host only: around its irq_guard-ed computation (inside the guard).
  void set_guarded(xcall::cpu_t cpu, bool on) noexcept;
  bool guarded(xcall::cpu_t cpu) const noexcept;

  /// Host only: set before a blocking_region begins, cleared after it ends.
  void set_parked(xcall::cpu_t cpu, bool on) noexcept;
  bool parked(xcall::cpu_t cpu) const noexcept;

  /// Host only: set once the region has begun, cleared before it ends: the
  /// span in which the host thread must run no call of its CPU.
  static void set_in_region(bool on) noexcept;
  static bool in_region() noexcept;

  /// Host only, inside its region: around a waiting call it makes there
  /// (--nesting). Such a waiter may proxy its own parked CPU, so the host
  /// thread running its CPU's calls is then right.
  static void set_calling_in_region(bool on) noexcept;
  static bool calling_in_region() noexcept;

  /// Around a tool function run for `cpu` on this thread: when `cpu` is not
  /// the thread's own, the thread is a proxy meanwhile (its own CPU's calls
  /// it drains in there run "beneath" a proxy, where a region parks nothing).
  static void enter_run(xcall::cpu_t cpu) noexcept;
  static void leave_run(xcall::cpu_t cpu) noexcept;
  static bool proxying() noexcept;

  /// Tool functions run on this thread for its own CPU (the host thread's;
  /// counted by check_where_it_runs): --delivery fd tells with it whether
  /// the end of a loop_wait ran calls.
  static void count_own_run() noexcept;
  static std::uint64_t own_runs() noexcept;

 private:
  std::unique_ptr<std::atomic<bool>[]> guarded_;
  std::unique_ptr<std::atomic<unsigned>[]> parked_;  ///< regions entered, not yet left
};

}  // namespace xcall_torture
