// clock.cpp — clock choice and TSC calibration (clock.hpp).
#include "clock.hpp"

#include <fstream>
#include <string>
#include <thread>

namespace xcall::bench {

namespace detail {
bool g_use_tsc = false;
double g_ns_per_tick = 1.0;
}  // namespace detail

namespace {

/// Both flags say the TSC ticks at one rate in every P- and C-state.
bool invariant_tsc() {
#if defined(__x86_64__) || defined(__i386__)
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    return line.find(" constant_tsc") != std::string::npos &&
           line.find(" nonstop_tsc") != std::string::npos;
  }
#endif
  return false;
}

}  // namespace

void calibrate_clock(std::chrono::milliseconds calibration) {
  detail::g_use_tsc = false;
  detail::g_ns_per_tick = 1.0;  // steady_clock counts nanoseconds on Linux
  if (!invariant_tsc()) return;
  detail::g_use_tsc = true;
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const std::uint64_t c0 = now_ticks();
  std::this_thread::sleep_for(calibration);
  const std::uint64_t c1 = now_ticks();
  const auto t1 = clock::now();
  const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
  if (c1 <= c0 || ns <= 0) {
    detail::g_use_tsc = false;
    return;
  }
  detail::g_ns_per_tick = ns / static_cast<double>(c1 - c0);
}

const char* clock_name() noexcept { return detail::g_use_tsc ? "tsc" : "steady_clock"; }

double clock_read_ns() noexcept {
  constexpr int kReads = 100000;
  const std::uint64_t start = now_ticks();
  std::uint64_t sink = 0;
  for (int i = 0; i < kReads; ++i) sink += now_ticks() & 1;
  const std::uint64_t end = now_ticks();
  __asm__ __volatile__("" : : "r"(sink));
  return ticks_to_ns(end - start) / kReads;
}

void spin_for_ns(double ns) noexcept {
  const std::uint64_t start = now_ticks();
  while (ticks_to_ns(now_ticks() - start) < ns) cpu_relax();
}

}  // namespace xcall::bench
