// drain.cpp — running what is queued for a CPU: the kernel's
// flush_smp_call_function_queue, the body of the IPI handler.
//
// Ordering: take_all() acquires the pushes (call_queue.hpp), so each function
// sees what its caller wrote before the call (guarantee 4, first half). A
// waiting call's descriptor is released after its function returns, a no-wait
// one before (the kernel's rule: the function may re-queue it); the release
// publishes the function's writes to a waiting caller (guarantee 4, second
// half), see waiting.cpp. `running` and the counters are relaxed: they are
// diagnostics written by the host alone.
#include "csd_ops.hpp"
#include "domain_impl.hpp"
#include "thread_context.hpp"
#include "trace.hpp"

namespace xcall::detail {

unsigned domain_impl::drain(cpu_state& c) noexcept {
  doorbell_mask mask;  // "already draining": the doorbell handler waits
  // A hotplug request is taken up at any drain: the requester may be a
  // function this CPU is waiting for.
  if (c.owned) serve_hotplug(c);
  // What an outer drain took and has not run yet comes first: its handler
  // may be waiting for one of them (guarantee 6).
  unsigned ran = run_batch(c);
  call_single_data* const calls = c.queue.take_all();
  // The classic engine's announcement (its call-function IPI); a domain of
  // the percpu engine has no classic_ and never announces.
  const bool announced = classic_ != nullptr && classic_take_pending(c);
  if (calls != nullptr || announced) {
    // Counted before anything runs, so a caller that returns from its wait
    // finds its call's notification in stats().
    if (c.woken) {
      c.woken = false;
    } else {
      bump(c.counters.doorbells_saved);  // found by polling: nobody had to ring
      XCALL_TRACE_DOORBELL_SAVED(c.id);
    }
  }
  // The classic walk this announcement asks for is owed until a walk starts:
  // if a function of the batch below waits, its nested drain walks for us.
  c.classic.owed = c.classic.owed || announced;
  c.batch = calls;
  ran += run_batch(c);
  // Inside a walk (a function run by it waits), walk again: blocks announced
  // before the outer walk reached them may be what that function waits for.
  if (c.classic.owed || c.classic.walking != 0) {
    c.classic.owed = false;
    ran += classic_walk(c);
  }
  return ran;
}

unsigned domain_impl::run_batch(cpu_state& c) noexcept {
  unsigned ran = 0;
  // Pop before running: a function that waits drains nested, and the nested
  // drain continues this same batch where we stand.
  for (call_single_data* csd; (csd = c.batch) != nullptr; ++ran) {
    c.batch = csd_ops::next(*csd);
    // Read everything we need before the release: afterwards the owner may
    // refill the descriptor or free it.
    const call_func_t func = csd->func;
    void* const info = csd->info;
    const call_func_t outer = c.running.load(std::memory_order_relaxed);
    c.running.store(func, std::memory_order_relaxed);
    // Counted before the release, so a caller that returns from its wait
    // finds its call in stats().
    if (csd_ops::is_sync(*csd)) {
      XCALL_TRACE_CSD_ENTRY(func, csd, c.id);
      func(info);
      XCALL_TRACE_CSD_EXIT(func, csd, c.id);
      bump(c.counters.calls_run);
      csd_unlock(*csd);
    } else {
      bump(c.counters.calls_run);
      csd_unlock(*csd);
      XCALL_TRACE_CSD_ENTRY(func, csd, c.id);  // csd: only its address, it may be gone
      func(info);
      XCALL_TRACE_CSD_EXIT(func, csd, c.id);
    }
    c.running.store(outer, std::memory_order_relaxed);  // nested drains restore
  }
  return ran;
}

}  // namespace xcall::detail
