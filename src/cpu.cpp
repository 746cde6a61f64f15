// cpu.cpp — the calling thread's CPU context (xcall/cpu.hpp): this_cpu(),
// the safe points poll() and idle_wait(), and the soft interrupt mask.
//
// Ordering: thread-local state only; draining and sleeping go through
// domain_impl::drain() (drain.cpp) and idle_until() (doorbell.hpp). The doorbell
// signal handler reads irq_depth: the guard raises it before the code it
// guards and lowers it after, with signal fences (thread_context.hpp).
#include "xcall/cpu.hpp"

#include <algorithm>

#include "domain_impl.hpp"
#include "doorbell.hpp"
#include "nudge.hpp"
#include "deadline.hpp"
#include "thread_context.hpp"

namespace xcall {
namespace detail {

thread_context& this_thread_context() noexcept {
  // initial-exec: the doorbell handler reads this from signal context, and
  // the general-dynamic model of a dlopen()ed shared library may allocate on
  // a thread's first access (liburcu's signal flavor makes the same choice).
  // Constant-initialised, so no guard variable either.
  [[gnu::tls_model("initial-exec")]] static thread_local thread_context context;
  return context;
}

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

}  // namespace detail

cpu_t this_cpu() noexcept {
  const detail::cpu_state* host = detail::this_thread_context().current();
  return host != nullptr ? host->id : no_cpu;
}

void poll() noexcept {
  detail::thread_context& ctx = detail::this_thread_context();
  detail::cpu_state* const c = ctx.current();
  if (c == nullptr || ctx.irqs_off()) return;
  detail::drain_acting(ctx, c);  // a proxy's own CPU is polled too
  // A function polling inside a wait may be waiting for a parked CPU that
  // only that wait owes: run its calls (nudge.hpp).
  detail::help_waits(ctx);
}

bool idle_wait(std::chrono::nanoseconds timeout) {
  detail::thread_context& ctx = detail::this_thread_context();
  detail::cpu_state* const host = ctx.current();
  if (host == nullptr || ctx.irqs_off()) return false;
  detail::cpu_state& c = *host;
  detail::domain_impl& dom = *c.dom;
  detail::doorbell_mask mask;  // we sleep on the state word ourselves
  if (detail::drain_acting(ctx, &c) != 0) return true;
  const auto deadline = detail::deadline_after(std::chrono::steady_clock::now(), timeout);
  // A wake-up may bring nothing to run (a release for a wait further down
  // this thread's stack, a hotplug request): sleep again until a call ran or
  // the deadline passed, so idle_wait(nanoseconds::max()) means "until a
  // call arrives".
  for (;;) {
    auto nap = deadline;
    // A proxy sleeps as the borrowed CPU, deaf to the doorbells of the CPUs
    // it holds: it naps, and looks at them between naps.
    if (ctx.proxying()) {
      nap = std::min(deadline,
                     detail::deadline_after(std::chrono::steady_clock::now(), detail::kProxyNap));
    }
    // A signal host waits as a polling one: senders ring the futex, not us.
    const bool polled = detail::enter_polling(c);
    dom.idle_until(
        c, [&c] { return c.has_calls(); }, nap, c.host_state.load(std::memory_order_relaxed));
    if (polled) detail::leave_polling(c);  // the drain below runs what came
    if (detail::drain_acting(ctx, &c) != 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

irq_guard::irq_guard() noexcept {
  detail::thread_context& ctx = detail::this_thread_context();
  const unsigned depth = ctx.irq_depth.load(std::memory_order_relaxed);
  ctx.irq_depth.store(depth + 1, std::memory_order_relaxed);
  // The doorbell handler must see the guard before the guarded code runs.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  detail::cpu_state* const c = ctx.current();
  // relaxed: a diagnostic for stall reports, written by the host alone.
  if (depth == 0 && c != nullptr) c->irqs_off.store(true, std::memory_order_relaxed);
}

irq_guard::~irq_guard() {
  detail::thread_context& ctx = detail::this_thread_context();
  std::atomic_signal_fence(std::memory_order_seq_cst);  // guarded code first
  const unsigned depth = ctx.irq_depth.load(std::memory_order_relaxed) - 1;
  ctx.irq_depth.store(depth, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (depth != 0) return;
  // No-wait calls sent inside the guard to parked proxy CPUs: their senders
  // (this thread) run them now, as they would have at once without a guard.
  detail::run_owed_help(ctx);
  detail::cpu_state* const c = ctx.current();
  if (c == nullptr) return;
  c->irqs_off.store(false, std::memory_order_relaxed);
  // Like local_irq_restore(): calls that arrived while masked run now. A
  // doorbell deferred by the guard is taken by this drain.
  // Load and store, no RMW: with the guard down a handler runs the queue
  // itself rather than set the flag.
  const bool rung = ctx.doorbell_pending.load(std::memory_order_relaxed);
  if (rung) ctx.doorbell_pending.store(false, std::memory_order_relaxed);
  if (!c->has_calls()) return;
  c->woken = rung;  // a deferred signal rang for these: not a doorbell saved
  c->dom->drain(*c);
  c->woken = false;
}

bool irqs_disabled() noexcept { return detail::this_thread_context().irqs_off(); }

}  // namespace xcall
