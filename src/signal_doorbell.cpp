// signal_doorbell.cpp — delivery_mode::signal: installing the doorbell
// signal, sending it, its handler, and the deferred run at the end of a
// doorbell_mask (the kernel's pending IPI taken when interrupts come back on).
//
// The handler runs the host's queue only when the host is in its own code:
// inside an irq_guard, or while the library works on the host's per-CPU state
// (doorbell_mask), it sets doorbell_pending and returns; the guard's end or
// the mask's end runs the queue instead. So masking costs no sigprocmask.
//
// While it runs the queue, the handler moves the host's state from running to
// polling, so senders stop signalling; going back it re-checks the queue
// after a seq_cst fence, the doorbell handshake of doorbell.hpp with
// "running" in the role of "sleeping": a sender that pushed while it was
// polling is seen by the re-check, a later one sees "running" and signals.
//
// Ordering: see signal_doorbell.hpp; the fence in resume_running() pairs
// with the sender's push and seq_cst load in ring_after_push().
#include "signal_doorbell.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <system_error>

#include "barriers.hpp"
#include "domain_impl.hpp"
#include "doorbell.hpp"
#include "thread_context.hpp"
#include "thread_sched.hpp"
#include "trace.hpp"

namespace xcall::detail {
namespace {

void doorbell_handler(int, siginfo_t*, void*) noexcept {
  const int saved_errno = errno;  // the interrupted code may be reading it
  std::atomic_signal_fence(std::memory_order_seq_cst);
  thread_context& ctx = this_thread_context();
  cpu_state* const c = ctx.current();
  // Not a host (any more), or a host reached by polling: a late or stray
  // signal, nothing to do.
  if (c != nullptr && c->doorbell_signo.load(std::memory_order_relaxed) != 0) {
    c->dom->doorbell_interrupt(*c, /*in_handler=*/true);
  }
  errno = saved_errno;
}

bool handled_by_xcall(const struct sigaction& sa) {
  return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == &doorbell_handler;
}

bool unclaimed(const struct sigaction& sa) {
  return (sa.sa_flags & SA_SIGINFO) == 0 && sa.sa_handler == SIG_DFL;
}

[[noreturn]] void fail(std::errc code, const std::string& what) {
  throw std::system_error(std::make_error_code(code), "xcall: " + what);
}

void install_handler(int signo) {
  struct sigaction sa {};
  sa.sa_sigaction = &doorbell_handler;
  // SA_RESTART: a host interrupted in a restartable system call (read on a
  // pipe, a futex wait) resumes it; no EINTR leaks into the application.
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, &sa, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "xcall: installing the doorbell handler for " + signal_name(signo));
  }
}

std::mutex install_mutex;  // one installer at a time, process-wide

}  // namespace

std::string signal_name(int signo) {
  if (signo >= SIGRTMIN && signo <= SIGRTMAX) {
    return "signal " + std::to_string(signo) + " (SIGRTMIN+" + std::to_string(signo - SIGRTMIN) +
           ")";
  }
  return "signal " + std::to_string(signo);
}

int install_doorbell_signal(int requested) {
  std::lock_guard<std::mutex> lock(install_mutex);
  struct sigaction old {};
  if (requested != 0) {
    if (sigaction(requested, nullptr, &old) != 0) {
      fail(std::errc::invalid_argument, signal_name(requested) + " cannot be queried");
    }
    if (handled_by_xcall(old)) return requested;
    if (!unclaimed(old)) {
      fail(std::errc::device_or_resource_busy,
           "doorbell " + signal_name(requested) +
               " already has a handler (or is ignored) that is not xcall's; choose a free "
               "signal in domain_options::doorbell_signal, or 0 for the first free one");
    }
    install_handler(requested);
    return requested;
  }
  // Prefer a signal xcall already handles: domains share one handler.
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) {
    if (sigaction(s, nullptr, &old) == 0 && handled_by_xcall(old)) return s;
  }
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) {
    if (sigaction(s, nullptr, &old) == 0 && unclaimed(old)) {
      install_handler(s);
      return s;
    }
  }
  fail(std::errc::resource_unavailable_try_again,
       "no free real-time signal for the doorbell: every signal from SIGRTMIN to SIGRTMAX has "
       "a handler or is ignored");
}

bool send_doorbell_signal(cpu_state& cpu, bool resend) noexcept {
  const int signo = cpu.doorbell_signo.load(std::memory_order_relaxed);
  if (signo == 0) return false;
  // relaxed: statistics, next to a system call.
  bump_shared(cpu.counters.signals_sent);
  if (resend) bump_shared(cpu.counters.signals_resent);
  XCALL_TRACE_DOORBELL_RING(cpu.id, kSignal);
  return syscall(SYS_tgkill, cpu.host_pid.load(std::memory_order_relaxed),
                 cpu.host_tid.load(std::memory_order_relaxed), signo) == 0;
}

namespace {

/// The hex mask after "<key>:\t" in `text`, or 0.
unsigned long long hex_field(const char* text, std::size_t size, const char* key) noexcept {
  const std::size_t key_len = std::strlen(key);
  for (std::size_t i = 0; i + key_len < size; ++i) {
    if ((i != 0 && text[i - 1] != '\n') || std::memcmp(text + i, key, key_len) != 0) continue;
    unsigned long long mask = 0;
    for (std::size_t j = i + key_len; j < size; ++j) {
      const char ch = text[j];
      if (ch == ' ' || ch == '\t') continue;
      const int digit = ch >= '0' && ch <= '9'   ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                                 : -1;
      if (digit < 0) break;
      mask = mask << 4 | static_cast<unsigned>(digit);
    }
    return mask;
  }
  return 0;
}

}  // namespace

signal_status thread_signal_status(pid_t tid, int signo) noexcept {
  // Async-signal-safe (read_task_file: open/read/close, no stdio): a waiter
  // that runs this may itself be a function running in a doorbell handler.
  signal_status st;
  if (signo <= 0 || signo > 64) return st;
  char text[4096];
  const std::size_t size = read_task_file(tid, "status", text, sizeof(text));
  if (size == 0) return st;
  const unsigned long long bit = 1ull << (signo - 1);
  st.pending = (hex_field(text, size, "SigPnd:") & bit) != 0;
  st.blocked = (hex_field(text, size, "SigBlk:") & bit) != 0;
  return st;
}

bool doorbell_signal_pending(const cpu_state& cpu) noexcept {
  const int signo = cpu.doorbell_signo.load(std::memory_order_relaxed);
  return signo != 0 && cpu.host_state.load(std::memory_order_relaxed) == kHostRunning &&
         thread_signal_status(cpu.host_tid.load(std::memory_order_relaxed), signo).pending;
}

void domain_impl::doorbell_interrupt(cpu_state& c, bool in_handler) noexcept {
  thread_context& ctx = this_thread_context();
  if (ctx.irqs_off() || ctx.doorbell_masked.load(std::memory_order_relaxed) != 0) {
    // Soft-masked: the end of the guard or of the library section runs it.
    ctx.doorbell_pending.store(true, std::memory_order_relaxed);
    if (in_handler) bump(c.counters.signals_deferred);
    return;
  }
  if (in_handler) bump(c.counters.signal_runs);
  c.woken = true;  // rung, not found by polling: not a doorbell saved
  run_interrupt(c, ctx);
  c.woken = false;
}

void domain_impl::run_interrupt(cpu_state& c, thread_context& ctx) noexcept {
  // Iterative, not recursive: a signal deferred while we run only sets
  // doorbell_pending, and the loop takes it.
  for (;;) {
    const bool polled = enter_polling(c);
    raise_doorbell_mask(ctx);
    ctx.doorbell_pending.store(false, std::memory_order_relaxed);
    drain(c);
    lower_doorbell_mask(ctx);
    const bool more = polled && leave_polling(c);
    if (!more && !ctx.doorbell_pending.load(std::memory_order_relaxed)) return;
  }
}

doorbell_mask::~doorbell_mask() {
  const unsigned depth = lower_doorbell_mask(ctx_);
  // A handler that ran before the store above deferred; one that runs after
  // it ran the queue itself. Either way nothing is left behind.
  if (depth != 0 || !ctx_.doorbell_pending.load(std::memory_order_relaxed)) return;
  cpu_state* const c = ctx_.current();
  if (c == nullptr || ctx_.irqs_off()) return;  // the guard's end runs it
  c->woken = true;                              // a deferred signal rang: not a doorbell saved
  c->dom->run_interrupt(*c, ctx_);
  c->woken = false;
}

}  // namespace xcall::detail
