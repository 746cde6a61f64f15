// nudge.cpp — a waiter's help for proxy targets and signal targets; see
// nudge.hpp.
#include "nudge.hpp"

#include "csd_ops.hpp"
#include "deadline.hpp"
#include "domain_impl.hpp"
#include "fault_injection.hpp"
#include "signal_doorbell.hpp"
#include "thread_context.hpp"

namespace xcall::detail {
namespace {

// The first re-send comes after 1 ms without progress (a signal takes a few
// microseconds to arrive; a host needs much less than that to run a call),
// then at doubling intervals up to 128 ms.
constexpr std::chrono::nanoseconds kFirstResend = std::chrono::milliseconds(1);
constexpr std::chrono::nanoseconds kLastResend = std::chrono::milliseconds(128);

}  // namespace

target_nudge::target_nudge(domain_impl& dom, call_single_data& csd, const cpumask* owing) noexcept
    : dom_(dom),
      csd_(csd),
      owing_(owing),
      active_(dom.has_attention_hosts()),
      outer_(this_thread_context().waits),
      interval_(kFirstResend),
      next_(active_ ? deadline_after(clock::now(), kFirstResend) : clock::time_point{}) {
  // The wait's doorbell mask is up (csd_lock_wait), so a signal handler on
  // this thread cannot run a function that would see the stack half-changed.
  this_thread_context().waits = this;
}

target_nudge::~target_nudge() { this_thread_context().waits = outer_; }

template <class F>
void target_nudge::for_each_target(F&& f) const {
  if (owing_ != nullptr) {
    for (cpu_t c : *owing_) f(dom_.cpu(c));
    return;
  }
  const cpu_t target = csd_ops::target(csd_);
  if (target < dom_.nr_cpu_ids()) f(dom_.cpu(target));
}

bool target_nudge::help_own() noexcept {
  if (!active_) return false;
  bool ran = false;
  for_each_target([&](cpu_state& t) { ran = dom_.try_proxy(t) || ran; });
  return ran;
}

bool target_nudge::help() noexcept {
  if (XCALL_FAULT(help_own_wait_only)) return help_own();
  bool ran = false;
  for (target_nudge* n = this; n != nullptr; n = n->outer_) ran = n->help_own() || ran;
  return ran;
}

void help_waits(thread_context& ctx) noexcept {
  if (XCALL_FAULT(help_own_wait_only)) return;
  if (ctx.waits != nullptr) (void)ctx.waits->help();
}

std::chrono::nanoseconds target_nudge::budget() const noexcept {
  // A proxy, or a wait inside a wait that owes parked targets: nap, so the
  // outer wait's targets are helped (tick()) at least this often.
  if (this_thread_context().proxying() || (outer_ != nullptr && outer_->active_)) {
    return kProxyNap;
  }
  if (!active_) return std::chrono::nanoseconds(-1);
  return time_left(next_, clock::now());
}

void target_nudge::tick() noexcept {
  if (!active_) return;
  help();
  const auto now = clock::now();
  if (now < next_ || !csd_ops::is_locked(csd_)) return;
  for_each_target([](cpu_state& t) {
    const int signo = t.doorbell_signo.load(std::memory_order_relaxed);
    if (signo == 0 || t.host_state.load(std::memory_order_relaxed) != kHostRunning) return;
    if (!t.has_queued()) return;             // a fan-out's target that ran its call already
    if (doorbell_signal_pending(t)) return;  // late, not lost
    send_doorbell_signal(t, /*resend=*/true);
  });
  if (interval_ < kLastResend) interval_ = doubled(interval_);
  next_ = deadline_after(now, interval_);
}

}  // namespace xcall::detail
