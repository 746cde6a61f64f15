// cpu.cpp — the calling thread's CPU context (xcall/cpu.hpp): this_cpu(),
// the safe points poll() and idle_wait(), and the soft interrupt mask.
//
// Ordering: thread-local state only; draining and sleeping go through
// domain_impl::drain() (drain.cpp) and idle_until() (idle.ipp).
#include "xcall/cpu.hpp"

#include "domain_impl.hpp"
#include "thread_context.hpp"

namespace xcall {
namespace detail {

thread_context& this_thread_context() noexcept {
  thread_local thread_context context;
  return context;
}

}  // namespace detail

cpu_t this_cpu() noexcept {
  const detail::cpu_state* host = detail::this_thread_context().host;
  return host != nullptr ? host->id : no_cpu;
}

void poll() noexcept {
  detail::thread_context& ctx = detail::this_thread_context();
  if (ctx.host != nullptr && ctx.irq_depth == 0) ctx.host->dom->drain(*ctx.host);
}

bool idle_wait(std::chrono::nanoseconds timeout) {
  detail::thread_context& ctx = detail::this_thread_context();
  if (ctx.host == nullptr || ctx.irq_depth != 0) return false;
  detail::cpu_state& c = *ctx.host;
  detail::domain_impl& dom = *c.dom;
  if (dom.drain(c) != 0) return true;
  if (timeout.count() < 0) timeout = std::chrono::nanoseconds(0);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  dom.idle_until(c, [&c] { return c.has_calls(); }, deadline,
                 c.host_state.load(std::memory_order_relaxed));
  return dom.drain(c) != 0;
}

irq_guard::irq_guard() noexcept {
  detail::thread_context& ctx = detail::this_thread_context();
  // relaxed: a diagnostic for stall reports, written by the host alone.
  if (ctx.irq_depth++ == 0 && ctx.host != nullptr) {
    ctx.host->irqs_off.store(true, std::memory_order_relaxed);
  }
}

irq_guard::~irq_guard() {
  detail::thread_context& ctx = detail::this_thread_context();
  // Like local_irq_restore(): calls that arrived while masked run now.
  if (--ctx.irq_depth != 0 || ctx.host == nullptr) return;
  ctx.host->irqs_off.store(false, std::memory_order_relaxed);
  if (ctx.host->has_calls()) ctx.host->dom->drain(*ctx.host);
}

bool irqs_disabled() noexcept { return detail::this_thread_context().irq_depth != 0; }

}  // namespace xcall
