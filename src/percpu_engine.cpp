// percpu_engine.cpp — the per-CPU queues (Linux 3.9+): queuing one
// descriptor on a CPU (the kernel's __smp_call_single_queue: a doorbell only
// when the queue was empty), which single calls of both engines use; and
// multi-CPU calls over them: one descriptor per target from the caller's
// storage, each pushed onto its target's own queue, the doorbells rung after
// the last push through the wake tree (fan_out_doorbell.hpp); with wait, the
// caller waits on each descriptor it actually queued.
//
// Ordering: each push is a release that the target's take acquires
// (call_queue.hpp); each wait is an acquire of the target's release of the
// descriptor (csd_ops.hpp, waiting.cpp). A target that went offline between
// the snapshot and the push refuses the push (its queue is closed), so it is
// dropped from the targets and never waited for: guarantee 3.
#include "csd_ops.hpp"
#include "deadline.hpp"
#include "domain_impl.hpp"
#include "error.hpp"
#include "doorbell.hpp"
#include "fan_out_doorbell.hpp"
#include "fault_injection.hpp"
#include "trace.hpp"

namespace xcall::detail {

bool domain_impl::call_single_queue(cpu_t target, call_single_data& csd,
                                    fan_out_doorbell* fan_out) noexcept {
  cpu_state& c = cpus_[target];
  csd_ops::set_target(csd, target);
  XCALL_TRACE_CSD_QUEUE(target, csd.func, &csd);  // before the push: the target may run it at once
  switch (c.queue.push(csd)) {
    case call_queue::push_result::closed:
      csd_ops::unlock_unqueued(csd);
      return false;
    case call_queue::push_result::was_empty:
      if (fan_out != nullptr) {
        fan_out->note(target);  // rung with the others, after the last push
      } else {
        ring_after_push(c);
      }
      break;
    case call_queue::push_result::queued:
      break;
  }
  // A waiting caller proxies for a parked host in its wait (nudge.hpp); a
  // no-wait call would otherwise sit in the queue until the host leaves
  // its region, which may be waiting for this very call. The check is a
  // hint: try_proxy()'s acquire CAS on the run lock is what decides. A
  // fan-out helps after its ring (queue_many): proxying runs functions,
  // which must not find doorbells still owed.
  if (fan_out == nullptr && !csd_ops::is_sync(csd)) help_parked(c);
  return true;
}

std::error_code domain_impl::queue_many(caller_storage& st, call_func_t func, void* info,
                                        bool wait) {
  if (st.targets.none()) return {};  // nothing to do, and nothing to allocate
  padded_csd* csds = st.many();
  if (csds == nullptr) return err(std::errc::not_enough_memory);
  // Every descriptor free before the first push: a caller gated by its
  // slowest target, as a classic call block is, queues to all targets at
  // once, so a second caller's calls reach hosts still awake from the first
  // one's wake-up (BENCHMARKS.md, "Scaling, and percpu vs classic"). It
  // also means no wait below with doorbells owed (a function a wait runs,
  // or waits for, may call a target pushed before it, find its queue
  // non-empty and leave the ring to us): only this owner locks them.
  wait_all_released(csds, st.targets);
  fan_out_doorbell doorbells(*this, st.ring_mask());
  for (cpu_t c : st.targets) {
    call_single_data& csd = csds[c].csd;
    csd_ops::lock(csd, wait);  // released, seen with acquire by wait_all_released()
    csd.func = func;
    csd.info = info;
    if (!call_single_queue(c, csd, &doorbells)) st.targets.reset(c);  // went offline: not a target
  }
  doorbells.ring();
  if (!wait) {  // as call_single_queue() does for a single no-wait call
    for (cpu_t c : st.targets) help_parked(cpus_[c]);
  }
  return {};
}

void domain_impl::wait_many(caller_storage& st) {
  if (st.targets.none()) return;
  wait_all_released(st.many(), st.targets);
}

void domain_impl::wait_all_released(padded_csd* csds, const cpumask& targets) noexcept {
  using clock = std::chrono::steady_clock;
  // One spin window for the whole fan-out, not one per descriptor: a caller
  // that spun it out for each would keep a core from the very hosts it
  // waits for.
  const clock::time_point spin_end = deadline_after(clock::now(), options_.idle_spin);
  // In mask order, each descriptor looked at until released, then never
  // again (only this owner locks them): one pass over the lines the targets
  // wrote. The wake tree wakes the highest ids first, so the first waits
  // are for the last to run, and the rest are mostly done by then.
  for (cpu_t c : targets) {
    call_single_data& csd = csds[c].csd;
    if (!csd_ops::is_locked(csd)) continue;  // acquire
    // The whole mask owes: the wait helps every parked target, not only
    // the one it waits on (whose function may wait for another's).
    const cpumask* const owing = XCALL_FAULT(proxy_one_target) ? nullptr : &targets;
    csd_lock_wait(csd, owing, time_left(spin_end, clock::now()));
  }
}

}  // namespace xcall::detail
