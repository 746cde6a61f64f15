// proxy.cpp — blocking regions and proxy execution (the HotSpot handshake):
// a host parked in a blocking_region hands its CPU's run lock out; a waiting
// caller takes it, runs the host's queued calls as that CPU, and hands it
// back. The host cannot leave its region while a proxy holds the lock.
//
// Whoever holds the run lock owns the CPU's host-only state (its batch, caller
// storage, counters): the host, except while parked; then at most one proxy.
// While parked the host thread acts as an outside caller (its context names
// no CPU), so nothing it does inside the region touches that state.
//
// Ordering:
//  - run_lock: the host's release store of kRunFree in park() pairs with a
//    proxy's acquire CAS in try_proxy(); the proxy's release in
//    release_run_lock() pairs with the host's acquire in take_run_lock()
//    (or with the next proxy's acquire CAS). So each owner sees everything
//    the previous one did to the host-only state.
//  - kHostParked: park() stores it, fences (seq_cst) and re-checks the
//    queue; pairs with the sender's seq_cst push and load (ring_after_push
//    in doorbell.hpp): a sender that pushed
//    before the fence is seen by the re-check, a later one sees "parked"
//    (and, if it waits, proxies). unpark() runs the same handshake back.
//  - A proxy's release: it frees the run lock, fences (seq_cst) and looks at
//    the queue again, the same handshake as park(): a no-wait sender pushes,
//    and tries the lock with a seq_cst CAS (help_parked). Either the
//    sender takes the lock, or the proxy sees its call and runs it; without
//    the re-check the call would wait for the host to leave its region,
//    which may be waiting for that very call.
#include "xcall/cpu.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "barriers.hpp"
#include "domain_impl.hpp"
#include "doorbell.hpp"
#include "futex.hpp"
#include "thread_context.hpp"
#include "trace.hpp"

namespace xcall {
namespace detail {

std::uint32_t domain_impl::park(cpu_state& c) noexcept {
  thread_context& ctx = this_thread_context();
  doorbell_mask mask;
  const std::uint32_t resume = c.host_state.load(std::memory_order_relaxed);
  for (;;) {
    drain(c);  // entering the region is a safe point
    c.host_state.store(kHostParked, std::memory_order_relaxed);
    // release: hands the host-only state to a proxy; pairs with the acquire
    // CAS in try_proxy().
    c.run_lock.store(kRunFree, std::memory_order_release);
    // seq_cst fence: pairs with the sender's push and load in
    // ring_after_push() (see the file comment).
    store_load_fence();
    if (!c.has_queued()) break;
    take_run_lock(c);  // a call slipped in: run it ourselves, park again
    c.host_state.store(resume, std::memory_order_relaxed);
  }
  ctx.parked = &c;
  ctx.host.store(nullptr, std::memory_order_relaxed);  // outside caller now
  return resume;
}

void domain_impl::unpark(cpu_state& c, std::uint32_t resume) noexcept {
  thread_context& ctx = this_thread_context();
  doorbell_mask mask;
  take_run_lock(c);  // waits for a proxy that is running our calls
  ctx.parked = nullptr;
  ctx.host.store(&c, std::memory_order_relaxed);
  c.host_state.store(resume, std::memory_order_relaxed);
  // seq_cst fence: a sender that saw "parked" neither rang nor signalled;
  // pairs with the sender's push and load (ring_after_push), as in park().
  store_load_fence();
  if (!ctx.irqs_off()) drain(c);  // leaving the region is a safe point
}

void domain_impl::take_run_lock(cpu_state& c) noexcept {
  for (;;) {
    // Each turn expects "free" afresh: a failed CAS below leaves in `seen`
    // what it read (a proxy's value, even when a weak CAS fails spuriously
    // on LL/SC hardware), and expecting that here would take the lock from
    // under the proxy (model/proxy.pml, proxy.weak_cas_fails).
    std::uint32_t seen = kRunFree;
    // acquire (success and failure): pairs with the release in
    // release_run_lock(), whether it freed the lock or handed it to us.
    if (c.run_lock.compare_exchange_weak(seen, kRunHost, std::memory_order_acquire,
                                         std::memory_order_acquire)) {
      return;
    }
    if (seen == kRunHost) return;  // a proxy handed it over
    if (seen == kRunFree) continue;
    // A proxy holds it: ask for a hand-over, then sleep until it comes.
    const std::uint32_t waiting = seen | kRunHostWaiting;
    if (seen != waiting &&
        !c.run_lock.compare_exchange_weak(seen, waiting, std::memory_order_relaxed,
                                          std::memory_order_relaxed)) {
      continue;
    }
    futex_wait(&c.run_lock, waiting);
  }
}

bool domain_impl::release_run_lock(cpu_state& c) noexcept {
  std::uint32_t held = kRunProxy;
  for (;;) {
    if ((held & kRunHostWaiting) != 0) {
      // The host is leaving its region: hand the lock straight to it, so
      // another proxy cannot take it first. release: pairs with the acquire
      // in take_run_lock().
      c.run_lock.store(kRunHost, std::memory_order_release);
      futex_wake(&c.run_lock);
      return false;
    }
    // release: pairs with take_run_lock() or the next try_proxy().
    if (c.run_lock.compare_exchange_weak(held, kRunFree, std::memory_order_release,
                                         std::memory_order_relaxed)) {
      return true;
    }
  }
}

unsigned drain_held(thread_context& ctx) noexcept {
  if (ctx.irqs_off()) return 0;
  unsigned ran = 0;
  for (unsigned i = 0; i < ctx.proxy_depth; ++i) {
    cpu_state* const held = ctx.held[i];
    if (held == nullptr) continue;
    // Swap places: we act as the held CPU, and the one we acted as becomes
    // held, so waits inside this drain run its calls in turn.
    cpu_state* const acting = ctx.current();
    ctx.held[i] = acting;
    ctx.host.store(held, std::memory_order_relaxed);
    ran += held->dom->drain(*held);
    ctx.host.store(acting, std::memory_order_relaxed);
    ctx.held[i] = held;
  }
  return ran;
}

void domain_impl::help_parked(cpu_state& c) noexcept {
  if (!c.proxy.load(std::memory_order_relaxed) ||
      c.host_state.load(std::memory_order_relaxed) != kHostParked) {
    return;
  }
  thread_context& ctx = this_thread_context();
  if (!ctx.irqs_off() || XCALL_FAULT(forget_guarded_help)) {
    (void)try_proxy(c);
    return;
  }
  // Inside an irq_guard we run no calls; nobody else would run this one
  // until the host left its region, which may be waiting for it (the
  // nesting torture's hang under ThreadSanitizer). Owe it to the guard's end.
  for (unsigned i = 0; i < ctx.owed_help_count; ++i) {
    if (ctx.owed_help[i] == &c) return;
  }
  if (ctx.owed_help_count == thread_context::kMaxOwedHelp) {
    ctx.owed_help_overflow = true;
    return;
  }
  ctx.owed_help[ctx.owed_help_count++] = &c;
}

void run_owed_help(thread_context& ctx) noexcept {
  while (ctx.owed_help_count != 0) {
    // Take the list first: what runs may owe more (inside guards of its
    // own, whose ends run them) or leave this list to a nested end.
    cpu_state* owed[thread_context::kMaxOwedHelp];
    const unsigned n = ctx.owed_help_count;
    const bool overflow = ctx.owed_help_overflow;
    std::copy_n(ctx.owed_help, n, owed);
    ctx.owed_help_count = 0;
    ctx.owed_help_overflow = false;
    for (unsigned i = 0; i < n; ++i) owed[i]->dom->help_parked(*owed[i]);
    if (!overflow) continue;
    for (unsigned i = 0; i < n; ++i) {
      domain_impl& dom = *owed[i]->dom;
      if (std::find_if(owed, owed + i, [&](cpu_state* o) { return o->dom == &dom; }) != owed + i) {
        continue;  // this domain was looked at already
      }
      for (cpu_t id = 0; id < dom.nr_cpu_ids(); ++id) dom.help_parked(dom.cpu(id));
    }
  }
}

unsigned drain_acting(thread_context& ctx, cpu_state* self) noexcept {
  const unsigned ran = self != nullptr ? self->dom->drain(*self) : 0;
  return ran + drain_held(ctx);
}

bool domain_impl::try_proxy(cpu_state& target) noexcept {
  thread_context& ctx = this_thread_context();
  // A thread inside an irq_guard runs no calls; proxies nest only so deep.
  if (ctx.proxy_depth == kMaxProxyDepth || ctx.irqs_off() ||
      !target.proxy.load(std::memory_order_relaxed)) {
    return false;
  }
  // Most nudges find the target not parked: no mask for them.
  if (target.host_state.load(std::memory_order_relaxed) != kHostParked) return false;
  // Our own doorbell waits until we are ourselves again and hold no run
  // lock: a deferred handler run in between would run our CPU's calls while
  // we still hold the target's lock without it in ctx.held (nobody would run
  // the target's calls, and its host could not leave its region).
  doorbell_mask mask;
  unsigned ran = 0;
  for (;;) {
    if (target.host_state.load(std::memory_order_relaxed) != kHostParked) break;
    std::uint32_t expected = kRunFree;
    // acquire: pairs with park()'s release store, or with the previous
    // proxy's release in release_run_lock(). seq_cst: a no-wait sender that
    // pushed (seq_cst CAS) and did not fence (ring_after_push) must not read
    // a lock that park() or a proxy freed before its fence and its missed
    // look at the queue (C++20 [atomics.order]/4.2 then orders this CAS
    // before that fence, which the push's CAS follows: a contradiction).
    if (!target.run_lock.compare_exchange_strong(expected, kRunProxy, std::memory_order_seq_cst,
                                                 std::memory_order_relaxed)) {
      break;
    }
    ran += proxy_once(ctx, target);
    if (!release_run_lock(target)) break;  // handed to the host, which drains on its way out
    if (XCALL_FAULT(skip_proxy_recheck)) break;
    // seq_cst fence: a no-wait sender whose help_parked() found the lock
    // ours left its call to us. Pairs with the sender's seq_cst push and its
    // seq_cst CAS in try_proxy (edge 19 of docs/memory-ordering.md): either it
    // takes the lock now free, or we see its call here and run it.
    store_load_fence();
    if (!target.has_queued()) break;
  }
  return ran != 0;
}

unsigned domain_impl::proxy_once(thread_context& ctx, cpu_state& target) noexcept {
  ctx.held[ctx.proxy_depth++] = ctx.current();
  ctx.host.store(&target, std::memory_order_relaxed);  // this_cpu() is the target
  target.woken = true;  // run by a proxy, not found by the host's polling
  const unsigned ran = drain(target);
  target.woken = false;
  bump(target.counters.proxy_runs, ran);
  ctx.host.store(ctx.held[--ctx.proxy_depth], std::memory_order_relaxed);
  XCALL_TRACE_PROXY_RUN(ctx.current() != nullptr ? ctx.current()->id : no_cpu, target.id, ran);
  if (const unsigned us = XCALL_FAULT_PARAM(widen_proxy_window)) {
    std::this_thread::sleep_for(std::chrono::microseconds(us));
  }
  return ran;
}

}  // namespace detail

blocking_region::blocking_region() noexcept {
  detail::thread_context& ctx = detail::this_thread_context();
  detail::cpu_state* const c = ctx.current();
  // Only a host of a proxy CPU parks; a proxy never parks the CPU it borrows.
  if (c == nullptr || ctx.proxying() || ctx.irqs_off() ||
      !c->proxy.load(std::memory_order_relaxed)) {
    return;
  }
  resume_state_ = c->dom->park(*c);
  parked_ = c;
}

blocking_region::~blocking_region() {
  if (parked_ == nullptr) return;
  auto* const c = static_cast<detail::cpu_state*>(parked_);
  c->dom->unpark(*c, resume_state_);
}

}  // namespace xcall
