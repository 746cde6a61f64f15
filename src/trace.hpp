// trace.hpp — xcall's static trace points (USDT, provider "xcall"), named
// after the kernel's trace events where one exists (csd_queue_cpu,
// csd_function_entry, csd_function_exit). Private to the library:
// docs/tracing.md lists every probe with its arguments and how to use them
// (bpftrace, perf, tracefs uprobes).
//
// Built with XCALL_TRACE=1 (the CMake option XCALL_TRACE, on where
// <sys/sdt.h> exists), each macro is one STAP_PROBEn: a single `nop` in the
// code and a note in .note.stapsdt that tells a tool where the nop is and
// where each argument lives (a register, a stack slot, a constant). With no
// tool attached nothing runs but the nop; the arguments are only values the
// compiler must have somewhere at that point, so pass nothing expensive.
// There are no semaphores. Built without it, every macro expands to
// ((void)0) and evaluates none of its arguments.
//
// Argument types are fixed here, not by the call site, so every copy of a
// probe (an inlined one may have several) has the same signature in its
// note: a CPU, a kind or a count is a u32 ("4@"), a pointer or a duration
// a u64 ("8@"). tests/trace/ checks the signatures.
//
// Ordering: none; a probe reads values the code already holds.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(XCALL_TRACE) && XCALL_TRACE
#include <sys/sdt.h>

namespace xcall::detail::trace {
/// A CPU number, a kind or a count: u32 in every note.
template <class T>
constexpr std::uint32_t u32(T v) noexcept {
  return static_cast<std::uint32_t>(v);
}
/// A pointer (data or function) as u64 in every note.
template <class T>
inline std::uint64_t ptr(T* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p);
}
inline std::uint64_t ptr(std::nullptr_t) noexcept { return 0; }
/// The doorbell a sender rang (doorbell_ring's second argument).
enum doorbell_kind : std::uint32_t { kFutex = 0, kSignal = 1, kFd = 2 };
}  // namespace xcall::detail::trace

#define XCALL_TRACE_ENABLED 1
// A descriptor (cpu, func, csd) is queued to `cpu`: kernel csd_queue_cpu.
#define XCALL_TRACE_CSD_QUEUE(cpu, func, csd)                         \
  STAP_PROBE3(xcall, csd_queue_cpu, ::xcall::detail::trace::u32(cpu), \
              ::xcall::detail::trace::ptr(func), ::xcall::detail::trace::ptr(csd))
// The same, once for each CPU of `mask` (the classic engine's call block).
#define XCALL_TRACE_CSD_QUEUE_MASK(mask, func, csd) \
  for (const auto xcall_trace_cpu_ : (mask)) XCALL_TRACE_CSD_QUEUE(xcall_trace_cpu_, func, csd)
// A function starts / ends on `cpu`: kernel csd_function_entry / _exit.
// csd is 0 for a call the caller ran locally on its own CPU.
#define XCALL_TRACE_CSD_ENTRY(func, csd, cpu)                               \
  STAP_PROBE3(xcall, csd_function_entry, ::xcall::detail::trace::ptr(func), \
              ::xcall::detail::trace::ptr(csd), ::xcall::detail::trace::u32(cpu))
#define XCALL_TRACE_CSD_EXIT(func, csd, cpu)                               \
  STAP_PROBE3(xcall, csd_function_exit, ::xcall::detail::trace::ptr(func), \
              ::xcall::detail::trace::ptr(csd), ::xcall::detail::trace::u32(cpu))
// A sender rang `cpu`'s doorbell; kind is kFutex (0, a futex wake), kSignal
// (1) or kFd (2, an eventfd write).
#define XCALL_TRACE_DOORBELL_RING(cpu, kind)                          \
  STAP_PROBE2(xcall, doorbell_ring, ::xcall::detail::trace::u32(cpu), \
              ::xcall::detail::trace::u32(::xcall::detail::trace::kind))
// `cpu` found calls that no doorbell announced: a ring saved.
#define XCALL_TRACE_DOORBELL_SAVED(cpu) \
  STAP_PROBE1(xcall, doorbell_saved, ::xcall::detail::trace::u32(cpu))
// `cpu`'s host goes to sleep on its state word / comes back (woken: 1 if a
// doorbell woke it, 0 for a timeout or a spurious return).
#define XCALL_TRACE_HOST_SLEEP(cpu) STAP_PROBE1(xcall, host_sleep, ::xcall::detail::trace::u32(cpu))
#define XCALL_TRACE_HOST_WAKE(cpu, woken)                         \
  STAP_PROBE2(xcall, host_wake, ::xcall::detail::trace::u32(cpu), \
              ::xcall::detail::trace::u32(woken))
// A thread acting as `home` (no_cpu: an outside thread) ran `count` calls of
// the parked CPU `borrowed` as its proxy.
#define XCALL_TRACE_PROXY_RUN(home, borrowed, count)               \
  STAP_PROBE3(xcall, proxy_run, ::xcall::detail::trace::u32(home), \
              ::xcall::detail::trace::u32(borrowed), ::xcall::detail::trace::u32(count))
// `cpu` came online / went offline (its queue opened / closed).
#define XCALL_TRACE_CPU_ONLINE(cpu) STAP_PROBE1(xcall, cpu_online, ::xcall::detail::trace::u32(cpu))
#define XCALL_TRACE_CPU_OFFLINE(cpu) \
  STAP_PROBE1(xcall, cpu_offline, ::xcall::detail::trace::u32(cpu))
// The stall watchdog reports a wait for `cpu` (no_cpu: a classic block that
// names no CPU) that has lasted `waited_ns`, for function `func`.
#define XCALL_TRACE_STALL(cpu, waited_ns, func)               \
  STAP_PROBE3(xcall, stall, ::xcall::detail::trace::u32(cpu), \
              static_cast<std::uint64_t>(waited_ns), ::xcall::detail::trace::ptr(func))

#else  // no trace points: nothing is evaluated

#define XCALL_TRACE_ENABLED 0
#define XCALL_TRACE_CSD_QUEUE(cpu, func, csd) ((void)0)
#define XCALL_TRACE_CSD_QUEUE_MASK(mask, func, csd) ((void)0)
#define XCALL_TRACE_CSD_ENTRY(func, csd, cpu) ((void)0)
#define XCALL_TRACE_CSD_EXIT(func, csd, cpu) ((void)0)
#define XCALL_TRACE_DOORBELL_RING(cpu, kind) ((void)0)
#define XCALL_TRACE_DOORBELL_SAVED(cpu) ((void)0)
#define XCALL_TRACE_HOST_SLEEP(cpu) ((void)0)
#define XCALL_TRACE_HOST_WAKE(cpu, woken) ((void)0)
#define XCALL_TRACE_PROXY_RUN(home, borrowed, count) ((void)0)
#define XCALL_TRACE_CPU_ONLINE(cpu) ((void)0)
#define XCALL_TRACE_CPU_OFFLINE(cpu) ((void)0)
#define XCALL_TRACE_STALL(cpu, waited_ns, func) ((void)0)

#endif
