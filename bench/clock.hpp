// clock.hpp — the timestamps every latency sample is taken with.
//
// On x86 with an invariant TSC (constant_tsc and nonstop_tsc in
// /proc/cpuinfo) a sample is two `lfence; rdtsc` reads, converted to
// nanoseconds with a rate calibrated against steady_clock at start-up; a read
// costs a few nanoseconds even in a VM. Elsewhere it is steady_clock (a vDSO
// clock_gettime, tens of nanoseconds in a VM). Every floor, peer and xcall
// figure of one run uses the same clock, so its overhead cancels in the
// ratios; machine.cpp reports which clock was used and what a read costs.
//
// Thread safety: calibrate() once, before any other thread starts; then
// every function may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace xcall::bench {

namespace detail {
extern bool g_use_tsc;
extern double g_ns_per_tick;
}  // namespace detail

/// Picks the clock and calibrates it (about `calibration` long).
void calibrate_clock(std::chrono::milliseconds calibration);

/// "tsc" or "steady_clock".
const char* clock_name() noexcept;

/// Nanoseconds one now_ticks() read costs, measured.
double clock_read_ns() noexcept;

/// A timestamp in clock ticks.
inline std::uint64_t now_ticks() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  if (detail::g_use_tsc) {
    _mm_lfence();  // do not start the read before earlier instructions finish
    return __rdtsc();
  }
#endif
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

inline double ticks_to_ns(std::uint64_t ticks) noexcept {
  return static_cast<double>(ticks) * detail::g_ns_per_tick;
}

/// Seconds since an arbitrary start, for durations of whole runs.
inline double now_seconds() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Busy-waits about `ns` nanoseconds (keeps the core, never sleeps).
void spin_for_ns(double ns) noexcept;

/// One pause of a spin loop.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

}  // namespace xcall::bench
