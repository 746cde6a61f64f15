// online.hpp — what the checker knows about CPU hotplug: a per-CPU online
// generation that brackets calls the way live_mask's sequences do, and the
// hotplug lock that no-wait multi-CPU calls hold to keep the online set still.
//
// online_tracker: every transition of CPU c (cpu_down/cpu_up of an owned CPU,
// detach/attach of an attached one) is wrapped as begin(c); <transition>;
// end(c, online), by the one thread that changes c (it holds the hotplug
// lock for writing). The generation is odd during a transition and even
// otherwise, 0 mod 4 when online and 2 mod 4 when offline:
//   0 online  ->  1 going down  ->  2 offline  ->  3 coming up  ->  4 (= 0)
// and end() moves to the next even value that says what the CPU is now, so
// a transition that ends where it began (a function's nested cpu_up of the
// CPU its own thread is taking down, --nesting) still moves it. A call
// bracketed by g1 = before(c) and g2 = after(c) had c online for its whole
// length iff g1 % 4 == 0 and g2 == g1, offline iff g1 % 4 == 2 and g2 == g1;
// anything else is "changed".
//
// hotplug_lock: a reader/writer spin lock. Transitions take it for writing;
// an invoker about to make a no-wait multi-CPU call takes it for reading, so
// it knows exactly which CPUs will run the call and can hand the handlers a
// reference count that the last one uses to free the argument. Rules that
// keep it deadlock-free: a thread that hosts a CPU only ever *tries* (it may
// be the CPU someone is waiting for); a writer waits while readers finish
// their (no-wait) calls; a waiting writer turns new try_read()s away. The
// write side is reentrant on its thread: a function that a CPU host drains
// while its own cpu_down waits may do hotplug too (--nesting).
//
// Thread safety: all members from any thread.
//
// Memory ordering:
//  - begin(): the odd generation is sequenced before the transition. A call
//    that observes the transition (the online bit, the closed queue) does so
//    through the library's release/acquire chain from the transition, which
//    starts after begin(); so after() sees the new generation.
//  - end(): release, after the transition returned; before() is an acquire:
//    a call bracketed after it sees the transition complete.
//  - hotplug_lock: acquire on taking, release on dropping, like any lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "live_mask.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

class online_tracker {
 public:
  /// `online`: whether every CPU starts online (owned CPUs) or offline (attached).
  online_tracker(xcall::cpu_t nr_cpus, bool online);

  void begin(xcall::cpu_t cpu) noexcept;
  /// `online`: what the CPU is now that the transition is over.
  void end(xcall::cpu_t cpu, bool online) noexcept;
  /// The tool's view: online and not in transition.
  bool stable_online(xcall::cpu_t cpu) const noexcept;

  live_mask::view before(xcall::cpu_t cpu) const noexcept;
  live_mask::view after(xcall::cpu_t cpu) const noexcept;
  static held classify(const live_mask::view& before, const live_mask::view& after) noexcept;

 private:
  std::unique_ptr<std::atomic<std::uint32_t>[]> gen_;
};

class hotplug_lock {
 public:
  bool try_read() noexcept;
  /// Blocks; only for threads that host no CPU.
  void read() noexcept;
  void unread() noexcept;

  /// The write side succeeds at once on the thread that already holds it
  /// (each take needs its unwrite()).
  bool try_write() noexcept;
  /// Blocks; only for threads that host no CPU.
  void write() noexcept;
  /// A CPU host's write: keeps polling its own CPU while it waits.
  void write_polling() noexcept;
  void unwrite() noexcept;

 private:
  std::atomic<std::int32_t> state_{0};  // readers, or -1 for a writer
  std::atomic<std::int32_t> writers_waiting_{0};
};

}  // namespace xcall_torture
