// nesting.hpp — --nesting DEPTH: functions run by the tool's calls act.
//
// handle_call() (checks.hpp) ends by calling maybe_act(): a function whose
// call is less than DEPTH levels deep acts one time in --nest-one-in, with
// one step picked by the --nest-weight-* weights:
//   call          an operation of any kind, as a top-level invoker makes
//                 them, with the same checks (nested_ops; its records are
//                 one level deeper, so their functions may act again);
//   poll, idle    xcall::poll(); xcall::idle_wait() with a short timeout;
//   idle-forever  sends a call to another CPU whose function sends one back
//                 (a "boomerang"), then idle_wait(nanoseconds::max()) until
//                 it is back; under the hotplug read lock, so both CPUs stay
//                 online and something is sure to arrive; idle_wait(forever)
//                 must never return without having run a call (idle);
//   region        a blocking_region (a nested operation and a short sleep
//                 inside): the thread is an outside caller inside exactly
//                 when it parked (attached, --proxy, its own CPU) (region);
//   guard         an irq_guard around a nested call: a waiting one, of any
//                 form, must fail at once with EDEADLK having run nothing,
//                 a no-wait one must work (deadlock);
//   hotplug       owned CPUs: cpu_down/cpu_up of another CPU (hotplug.hpp;
//                 half the time of a CPU this thread is already taking up
//                 or down, when there is one), or of its own, which must
//                 fail with EDEADLK (deadlock).
// Never inside the doorbell signal's handler (nothing here is
// async-signal-safe), never once the run is stopping, never detach.
//
// Each thread has one activity slot per frame of nested steps (a function
// drained while a step waits may act too), so the watchdog names what a
// hung step is, where, and under which top-level operation.
//
// Thread safety: maybe_act() from any thread running a tool function; the
// descriptor pool from any thread.
//
// Memory ordering: the pool's busy flags are acquire (claim) / release
// (give back), so a claimer's writes to a descriptor follow the previous
// holder's. The boomerang's flag is release (its function) / acquire (the
// idle waiter). Everything else is the library's, which is what is checked.
#pragma once

#include <atomic>
#include <memory>

#include "xcall/csd.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

struct call_record;
struct run_state;

/// The end of handle_call() outside the doorbell handler: maybe one nested step.
void maybe_act(const call_record& rec, xcall::cpu_t cpu);

/// Async descriptors for nested invokers: an async operation's descriptor
/// must outlive the function that sends it. Each entry is a pair (a
/// descriptor carrying a record, a fixed-function probe).
class descriptor_pool {
 public:
  descriptor_pool(run_state& run, unsigned entries);

  /// A free entry's index, or -1 when every entry is held.
  int claim() noexcept;
  void give_back(int index) noexcept;
  xcall::call_single_data& async(int index) noexcept { return entries_[index].async; }
  xcall::call_single_data& probe(int index) noexcept { return entries_[index].probe; }

 private:
  struct entry {
    xcall::call_single_data async;
    xcall::call_single_data probe;
    std::atomic<bool> busy{false};
  };
  std::unique_ptr<entry[]> entries_;
  const unsigned n_;
};

}  // namespace xcall_torture
