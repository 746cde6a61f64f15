// stall_watch.cpp — the stall watchdog of one wait, and the report format.
//
// Ordering: see stall_watch.hpp; the counter stalls_reported is a relaxed
// RMW (several waiters may report the same target), on a slow path.
#include "stall_watch.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <memory>

#include "csd_ops.hpp"
#include "domain_impl.hpp"
#include "doorbell.hpp"
#include "deadline.hpp"
#include "signal_doorbell.hpp"
#include "thread_sched.hpp"
#include "trace.hpp"

namespace xcall {
namespace {

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%p", p);
  return buf;
}

double seconds(std::chrono::nanoseconds ns) { return static_cast<double>(ns.count()) / 1e9; }

const char* activity_name(host_activity a) {
  switch (a) {
    case host_activity::running:
      return "running its own code";
    case host_activity::polling:
      return "polling";
    case host_activity::sleeping:
      return "sleeping";
    case host_activity::handler:
      return "running";
    case host_activity::parked:
      return "parked in a blocking_region";
    case host_activity::loop_blocked:
      return "blocked in its event loop";
  }
  return "?";
}

/// "host tid 1234 (R), runnable but not running 0.93 s of the last 1.00 s",
/// or "" when the target has no host thread.
std::string host_sched_text(const stall_report& r) {
  if (r.target_tid == 0) return "";
  std::string text = "host tid " + std::to_string(r.target_tid);
  if (r.target_thread_state != 0) text += std::string(" (") + r.target_thread_state + ")";
  if (r.target_runnable_wait.count() >= 0) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), ", runnable but not running %.2f s of the last %.2f s",
                  seconds(r.target_runnable_wait), seconds(r.target_sched_window));
    text += buf;
  }
  return text;
}

std::string waiter_name(const stall_report& r) {
  if (r.waiter_cpu != no_cpu) return "CPU " + std::to_string(r.waiter_cpu);
  return "outside caller (tid " + std::to_string(r.waiter_tid) + ")";
}

}  // namespace

std::string format_stall_report(const stall_report& r) {
  char head[160];
  const std::string call = r.func_name + "(" + hex(r.info) + ")";
  if (r.unstuck) {
    if (r.target == no_cpu) {
      std::snprintf(head, sizeof(head), "xcall: stall #%u over: a multi-CPU call ran ", r.report);
    } else {
      std::snprintf(head, sizeof(head), "xcall: stall #%u over: CPU %u ran ", r.report, r.target);
    }
    char tail[96];
    std::snprintf(tail, sizeof(tail), " after %.3f s", seconds(r.waited));
    const std::string sched = host_sched_text(r);
    return head + call + " for " + waiter_name(r) + tail +
           (sched.empty() ? "" : " (" + sched + ")");
  }
  if (r.target == no_cpu) {
    // The seed's perma-spin: a classic call block queued with no CPU in its
    // mask is never run, so nobody ever unlocks it.
    std::snprintf(head, sizeof(head),
                  "xcall: stall #%u: %s has waited %.3f s for a multi-CPU call whose mask names "
                  "no CPU: ",
                  r.report, waiter_name(r).c_str(), seconds(r.waited));
    return head + call + " will never run (a call block queued with refs == 0)";
  }
  std::snprintf(head, sizeof(head), "xcall: stall #%u: %s has waited %.3f s for CPU %u to run ",
                r.report, waiter_name(r).c_str(), seconds(r.waited), r.target);
  std::string target =
      std::string(r.target_online ? "online" : "offline") + ", " + activity_name(r.target_activity);
  if (r.target_activity == host_activity::handler) target += " " + r.target_func_name;
  target += r.target_irqs_disabled ? ", irqs off" : ", irqs on";
  target += ", " + std::to_string(r.target_queue_length) + " queued";
  if (r.target_doorbell_signal != 0) {
    target += r.target_blocks_signal
                  ? ", its thread BLOCKS the doorbell signal " +
                        std::to_string(r.target_doorbell_signal) + ": no re-send can reach it"
                  : ", doorbell signal " + std::to_string(r.target_doorbell_signal);
  }
  if (const std::string sched = host_sched_text(r); !sched.empty()) target += "; " + sched;
  return head + call + " [CPU " + std::to_string(r.target) + ": " + target +
         "]; ringing its doorbell again";
}

namespace detail {

/// The symbol of a function, demangled, or its address.
std::string function_name(call_func_t func) {
  if (func == nullptr) return "(none)";
  Dl_info info{};
  void* address = reinterpret_cast<void*>(func);
  if (dladdr(address, &info) == 0 || info.dli_sname == nullptr) return hex(address);
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(info.dli_sname);
}

stall_watch::stall_watch(domain_impl& dom, call_single_data& csd) noexcept
    : dom_(dom),
      csd_(csd),
      func_(csd.func),
      info_(csd.info),
      target_(csd_ops::target(csd)),
      enabled_(dom.options().stall_timeout.count() > 0),
      start_(clock::now()),
      next_(deadline_after(start_, dom.options().stall_timeout)),
      interval_(dom.options().stall_timeout),
      sample_at_(next_ -
                 std::min<std::chrono::nanoseconds>(interval_ / 4, std::chrono::seconds(1))) {}

std::chrono::nanoseconds stall_watch::budget() const noexcept {
  if (!enabled_) return std::chrono::nanoseconds(-1);
  const bool sample_first = reports_ == 0 && sampled_when_ == clock::time_point{};
  return time_left(sample_first ? sample_at_ : next_, clock::now());
}

void stall_watch::sample_scheduler(stall_report& r, clock::time_point now) noexcept {
  const pid_t tid =
      target_ < dom_.nr_cpu_ids() ? dom_.cpu(target_).host_tid.load(std::memory_order_relaxed) : 0;
  const thread_sched_sample s = sample_thread_sched(tid);
  r.target_tid = tid;
  r.target_thread_state = s.state;
  // A waiter that overslept the sample point (a loaded machine) samples and
  // reports at once: no window to measure, so unknown rather than 0 of 0.
  if (tid != 0 && tid == sampled_tid_ && s.run_delay_ns >= 0 && sampled_delay_ >= 0 &&
      now > sampled_when_) {
    // The kernel adds a wait to run_delay when the thread gets a CPU, so a
    // wait that began before the window counts whole: clamp to the window.
    r.target_sched_window = now - sampled_when_;
    r.target_runnable_wait = std::min<std::chrono::nanoseconds>(
        std::chrono::nanoseconds(s.run_delay_ns - sampled_delay_), r.target_sched_window);
  }
  sampled_tid_ = tid;
  sampled_delay_ = s.run_delay_ns;
  sampled_when_ = now;
}

stall_report stall_watch::snapshot(bool unstuck, clock::time_point now) {
  stall_report r;
  sample_scheduler(r, now);
  r.unstuck = unstuck;
  r.report = reports_;
  r.waiter_cpu = dom_.self_cpu();
  r.waiter_tid = static_cast<pid_t>(syscall(SYS_gettid));
  r.target = target_;
  r.waited = std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_);
  r.func = func_;
  r.info = info_;
  r.func_name = function_name(func_);
  if (target_ >= dom_.nr_cpu_ids()) return r;  // a classic block that names no CPU
  const cpu_state& t = dom_.cpu(target_);
  r.target_online = dom_.online_mask().test(target_);
  r.target_func = t.running.load(std::memory_order_relaxed);
  const std::uint32_t state = t.host_state.load(std::memory_order_relaxed);
  r.target_activity = r.target_func != nullptr                           ? host_activity::handler
                      : state == kHostSleeping || state == kHostWakeOwed ? host_activity::sleeping
                      : state == kHostRunning                            ? host_activity::running
                      : state == kHostParked                             ? host_activity::parked
                      : state == kHostLoopBlocked || state == kHostLoopWoken
                          ? host_activity::loop_blocked
                          : host_activity::polling;
  r.target_func_name = function_name(r.target_func);
  r.target_irqs_disabled = t.irqs_off.load(std::memory_order_relaxed);
  r.target_queue_length = t.queue.length();
  r.target_doorbell_signal = t.doorbell_signo.load(std::memory_order_relaxed);
  if (r.target_doorbell_signal != 0) {
    r.target_blocks_signal =
        thread_signal_status(t.host_tid.load(std::memory_order_relaxed), r.target_doorbell_signal)
            .blocked;
  }
  return r;
}

void stall_watch::check() noexcept {
  if (!enabled_) return;
  const auto now = clock::now();
  if (reports_ == 0 && sampled_when_ == clock::time_point{} && now >= sample_at_) {
    stall_report ignored;
    sample_scheduler(ignored, now);  // the first report's window starts here
  }
  if (now < next_) return;
  ++reports_;
  XCALL_TRACE_STALL(target_, std::chrono::nanoseconds(now - start_).count(), func_);
  if (target_ < dom_.nr_cpu_ids()) {
    bump_shared(dom_.cpu(target_).counters.stalls_reported);
  }
  try {
    dom_.report_stall(snapshot(false, now));
  } catch (...) {
    // A report that cannot be built (out of memory) is dropped, not fatal.
  }
  interval_ = doubled(interval_);
  next_ = deadline_after(now, interval_);
  // A lost wake-up is a known cause of stalls: ring again, unless the
  // doorbell signal is still pending on the host's thread (late, not lost).
  if (target_ < dom_.nr_cpu_ids()) {
    cpu_state& t = dom_.cpu(target_);
    if (!doorbell_signal_pending(t)) ring_doorbell(t, /*may_be_lost=*/false);
  }
}

stall_watch::~stall_watch() {
  if (reports_ == 0) return;
  try {
    dom_.report_stall(snapshot(true, clock::now()));
  } catch (...) {
  }
}

void domain_impl::report_stall(const stall_report& report) const {
  if (options_.on_stall) {
    options_.on_stall(report);
    return;
  }
  std::fprintf(stderr, "%s\n", format_stall_report(report).c_str());
}

}  // namespace detail
}  // namespace xcall
