// calls.cpp — the call forms: argument checks, the local run on the caller's
// own CPU, single calls, and the front half of multi-CPU calls (the private
// snapshot of `mask & online - self`, the modern form of the seed fix).
//
// Ordering: a single call publishes its descriptor with the queue's release
// push (call_queue.hpp) and waits with the acquire of csd_lock_wait()
// (waiting.cpp). The snapshot reads the caller's mask and the online mask
// with acquire loads (cpumask.hpp); no other edge starts here.
#include "xcall/cpu.hpp"
#include "csd_ops.hpp"
#include "caller_scope.hpp"
#include "caller_storage.hpp"
#include "domain_impl.hpp"
#include "error.hpp"
#include "thread_context.hpp"
#include "trace.hpp"

namespace xcall::detail {
namespace {

/// The kernel runs a call addressed to the caller's own CPU locally with
/// interrupts off; so do we, with the soft mask. The doorbell mask marks it
/// as a function run by a call, as a drain does (detach refuses to end an
/// attachment from inside one). Traced as the kernel does, with no csd.
void run_locally([[maybe_unused]] cpu_t self, call_func_t func, void* info) noexcept {
  doorbell_mask mask;
  irq_guard guard;
  XCALL_TRACE_CSD_ENTRY(func, nullptr, self);
  func(info);
  XCALL_TRACE_CSD_EXIT(func, nullptr, self);
}

}  // namespace

std::error_code domain_impl::call_single(cpu_t cpu, call_func_t func, void* info, bool wait) {
  if (func == nullptr) return err(std::errc::invalid_argument);
  if (wait && irqs_disabled()) return err(std::errc::resource_deadlock_would_occur);
  if (cpu >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (cpu == self_cpu()) {
    run_locally(cpu, func, info);
    return {};
  }
  if (!online_.test(cpu)) return err(std::errc::no_such_device_or_address);
  if (wait) {
    // On our stack (we outlive its flight), alone in its cache line: the
    // target reads and releases it while we spin on it, and must not pull
    // our other stack variables along (as the kernel aligns call_single_data
    // to its size).
    padded_csd on_stack{call_single_data(func, info)};
    call_single_data& csd = on_stack.csd;
    csd_ops::lock(csd, /*sync=*/true);
    if (!call_single_queue(cpu, csd)) return err(std::errc::no_such_device_or_address);
    csd_lock_wait(csd);
    return {};
  }
  caller_scope scope(*this);
  if (!scope) return scope.error();
  return call_single_nowait(scope.storage(), cpu, func, info);
}

std::error_code domain_impl::call_single_nowait(caller_storage& st, cpu_t cpu, call_func_t func,
                                                void* info) {
  call_single_data& csd = st.single;
  csd_lock(csd, /*sync=*/false);  // our previous no-wait call must be done with it
  csd.func = func;
  csd.info = info;
  return call_single_queue(cpu, csd) ? std::error_code()
                                     : err(std::errc::no_such_device_or_address);
}

std::error_code domain_impl::call_single_async(cpu_t cpu, call_single_data& csd) {
  if (csd.func == nullptr) return err(std::errc::invalid_argument);
  if (cpu >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (!csd_ops::try_lock(csd)) return err(std::errc::device_or_resource_busy);
  if (cpu == self_cpu()) {
    // As the kernel does: release first, so the function may re-queue it.
    const call_func_t func = csd.func;
    void* const info = csd.info;
    csd_ops::unlock(csd);
    run_locally(cpu, func, info);
    return {};
  }
  return call_single_queue(cpu, csd) ? std::error_code()
                                     : err(std::errc::no_such_device_or_address);
}

std::error_code domain_impl::call_many(const cpumask& mask, call_func_t func, void* info, bool wait,
                                       bool run_self, cond_func_t cond) {
  if (func == nullptr) return err(std::errc::invalid_argument);
  if (mask.size() < nr_cpu_ids()) return err(std::errc::invalid_argument);
  if (wait && irqs_disabled()) return err(std::errc::resource_deadlock_would_occur);
  const cpu_t self = self_cpu();
  // Every cond runs before anything is queued, the caller's own first: a
  // cond that throws leaves no call in flight (and no `info` on a frame
  // the exception unwinds).
  const bool run_here =
      run_self && self != no_cpu && mask.test(self) && (cond == nullptr || cond(self, info));
  caller_scope scope(*this);
  if (!scope) return scope.error();
  caller_storage& st = scope.storage();
  // The one place the engine is chosen: each queues and waits its own way.
  switch (options_.engine_kind) {
    case engine::classic: {
      // The classic engine takes the live mask itself (its fast path and
      // its `and` are where the seed's race lives, docs/design.md#the-seed);
      // a cond call first narrows it, as the kernel's on_each_cpu_cond did.
      const cpumask* targets = &mask;
      if (cond != nullptr) targets = &snapshot_targets(st.targets, mask, self, cond, info);
      if (const std::error_code ec = classic_queue_many(st, *targets, self, func, info, wait)) {
        return ec;  // out of memory before anything was queued
      }
      if (run_here) run_locally(self, func, info);
      if (wait) classic_wait_many(st);
      return {};
    }
    case engine::percpu:
      break;
  }
  // The seed's fix, modern form: one private snapshot of the live masks.
  // Other threads may clear every bit of `mask` meanwhile; the snapshot may
  // then be empty, and an empty snapshot is a call with nothing to do.
  snapshot_targets(st.targets, mask, self, cond, info);
  if (const std::error_code ec = queue_many(st, func, info, wait)) return ec;  // nothing queued
  if (run_here) run_locally(self, func, info);
  if (wait) wait_many(st);
  return {};
}

const cpumask& domain_impl::snapshot_targets(cpumask& out, const cpumask& mask, cpu_t self,
                                             cond_func_t cond, void* info) {
  out.assign_and(mask, online_);
  if (self != no_cpu) out.reset(self);  // the caller runs its own part locally, if at all
  if (cond != nullptr) {
    for (cpu_t c : out) {
      if (!cond(c, info)) out.reset(c);
    }
  }
  return out;
}

std::error_code domain_impl::call_any(const cpumask& mask, call_func_t func, void* info,
                                      bool wait) {
  if (func == nullptr) return err(std::errc::invalid_argument);
  if (mask.size() < nr_cpu_ids()) return err(std::errc::invalid_argument);
  if (wait && irqs_disabled()) return err(std::errc::resource_deadlock_would_occur);
  const cpu_t self = self_cpu();
  if (self != no_cpu && mask.test(self)) return call_single(self, func, info, wait);
  // A candidate may go offline between the look and the push: try the next.
  for (cpu_t c = first_and(mask, online_); c < nr_cpu_ids(); c = next_and(c, mask, online_)) {
    const std::error_code ec = call_single(c, func, info, wait);
    if (ec != std::errc::no_such_device_or_address) return ec;
  }
  return err(std::errc::no_such_device_or_address);
}

}  // namespace xcall::detail
