// calls.cpp — the call forms: argument checks, the local run on the caller's
// own CPU, single calls, and the front half of multi-CPU calls (the private
// snapshot of `mask & online - self`, the modern form of the seed fix).
//
// Ordering: a single call publishes its descriptor with the queue's release
// push (call_queue.hpp) and waits with the acquire of wait_unlocked()
// (waiting.cpp). The snapshot reads the caller's mask and the online mask
// with acquire loads (cpumask.hpp); no other edge starts here.
#include "xcall/cpu.hpp"
#include "csd_ops.hpp"
#include "domain_impl.hpp"
#include "thread_context.hpp"

namespace xcall::detail {
namespace {

std::error_code err(std::errc e) { return std::make_error_code(e); }

/// The kernel runs a call addressed to the caller's own CPU locally with
/// interrupts off; so do we, with the soft mask. The doorbell mask marks it
/// as a function run by a call, as a drain does (detach refuses to end an
/// attachment from inside one).
void run_locally(call_func_t func, void* info) noexcept {
  doorbell_mask mask;
  irq_guard guard;
  func(info);
}

}  // namespace

cpu_t domain_impl::self_cpu() const noexcept {
  const cpu_state* host = this_thread_context().current();
  return host != nullptr && host->dom == this ? host->id : no_cpu;
}

cpu_state* domain_impl::drainable_self() const noexcept {
  const thread_context& ctx = this_thread_context();
  cpu_state* const host = ctx.current();
  if (host == nullptr || host->dom != this || ctx.irqs_off()) return nullptr;
  return host;
}

bool domain_impl::queue_on(cpu_t target, call_single_data& csd) noexcept {
  cpu_state& c = cpus_[target];
  csd_ops::set_target(csd, target);
  switch (c.queue.push(csd)) {
    case call_queue::push_result::closed:
      csd_ops::unlock_unqueued(csd);
      return false;
    case call_queue::push_result::was_empty:
      ring_doorbell(c);
      break;
    case call_queue::push_result::queued:
      break;
  }
  // A waiting caller proxies for a parked host in its wait (nudge.hpp); a
  // no-wait call would otherwise sit in the queue until the host leaves
  // its region, which may be waiting for this very call. The check is a
  // hint: try_proxy()'s acquire CAS on the run lock is what decides.
  if (!csd_ops::is_sync(csd)) help_parked(c);
  return true;
}

void domain_impl::help_parked(cpu_state& c) noexcept {
  if (c.proxy.load(std::memory_order_relaxed) &&
      c.host_state.load(std::memory_order_relaxed) == kHostParked) {
    (void)try_proxy(c);
  }
}

std::error_code domain_impl::call_single(cpu_t cpu, call_func_t func, void* info, bool wait) {
  if (func == nullptr) return err(std::errc::invalid_argument);
  if (wait && irqs_disabled()) return err(std::errc::resource_deadlock_would_occur);
  if (cpu >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (cpu == self_cpu()) {
    run_locally(func, info);
    return {};
  }
  if (!online_.test(cpu)) return err(std::errc::no_such_device_or_address);
  if (wait) {
    call_single_data csd(func, info);  // on our stack: we outlive its flight
    csd_ops::lock(csd, /*sync=*/true);
    if (!queue_on(cpu, csd)) return err(std::errc::no_such_device_or_address);
    wait_unlocked(csd);
    return {};
  }
  caller_scope scope(*this);
  if (!scope) return scope.error();
  return call_single_nowait(scope.storage(), cpu, func, info);
}

std::error_code domain_impl::call_single_nowait(caller_storage& st, cpu_t cpu, call_func_t func,
                                                void* info) {
  call_single_data& csd = st.single;
  wait_unlocked(csd);  // csd_lock: our previous no-wait call must be done with it
  csd.func = func;
  csd.info = info;
  csd_ops::lock(csd, /*sync=*/false);
  return queue_on(cpu, csd) ? std::error_code() : err(std::errc::no_such_device_or_address);
}

std::error_code domain_impl::call_single_async(cpu_t cpu, call_single_data& csd) {
  if (csd.func == nullptr) return err(std::errc::invalid_argument);
  if (cpu >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (!csd_ops::try_lock(csd)) return err(std::errc::device_or_resource_busy);
  if (cpu == self_cpu()) {
    // As the kernel does: release first, so the function may re-queue it.
    const call_func_t func = csd.func;
    void* const info = csd.info;
    csd_ops::release(csd);
    run_locally(func, info);
    return {};
  }
  return queue_on(cpu, csd) ? std::error_code() : err(std::errc::no_such_device_or_address);
}

std::error_code domain_impl::call_many(const cpumask& mask, call_func_t func, void* info,
                                       bool wait, bool run_self, cond_func_t cond) {
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
  const bool classic = options_.engine_kind == engine::classic;
  std::error_code ec;
  if (classic) {
    // The classic engine takes the live mask itself (its fast path and its
    // `and` are the seed's race); a cond call first narrows it, as the
    // kernel's on_each_cpu_cond did.
    const cpumask* targets = &mask;
    if (cond != nullptr) targets = &snapshot_targets(st.targets, mask, self, cond, info);
    ec = classic_queue_many(st, *targets, self, func, info, wait);
  } else {
    // The seed fix, modern form: one private snapshot of the live masks.
    // Other threads may clear every bit of `mask` meanwhile; the snapshot
    // may then be empty, and an empty snapshot is a call with nothing to do.
    snapshot_targets(st.targets, mask, self, cond, info);
    ec = queue_many(st, func, info, wait);
  }
  if (ec) return ec;  // out of memory before anything was queued
  if (run_here) run_locally(func, info);
  if (wait) {
    if (classic) {
      classic_wait_many(st);
    } else {
      wait_many(st);
    }
  }
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
