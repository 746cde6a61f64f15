// format.hpp — numbers as the tables print them: latencies in µs (ns below
// 0.1 µs, ms above 10 ms), rates in M/s or k/s, ratios with two significant
// decimals ("1.23×"). Everything else is formatted with {fmt} (fmt::format),
// whose format strings are checked at compile time and whose results are
// never truncated.
#pragma once

#include <fmt/format.h>

#include <string>

namespace xcall::bench {

inline std::string fmt_ns(double ns) {
  if (ns <= 0) return "–";
  if (ns < 100) return fmt::format("{:.0f} ns", ns);
  if (ns < 10e3) return fmt::format("{:.2f} µs", ns / 1e3);
  if (ns < 10e6) return fmt::format("{:.1f} µs", ns / 1e3);
  return fmt::format("{:.1f} ms", ns / 1e6);
}

/// Microseconds without a unit, for columns headed "(µs)".
inline std::string fmt_us(double ns) {
  if (ns <= 0) return "–";
  const double us = ns / 1e3;
  if (us < 10) return fmt::format("{:.2f}", us);
  if (us < 1000) return fmt::format("{:.1f}", us);
  return fmt::format("{:.0f}", us);
}

inline std::string fmt_rate(double per_s) {
  if (per_s <= 0) return "–";
  if (per_s >= 1e6) return fmt::format("{:.2f} M/s", per_s / 1e6);
  if (per_s >= 1e3) return fmt::format("{:.1f} k/s", per_s / 1e3);
  return fmt::format("{:.0f} /s", per_s);
}

inline std::string fmt_ratio(double r) {
  if (!(r > 0)) return "–";
  if (r < 0.1) return fmt::format("{:.3f}×", r);
  if (r < 10) return fmt::format("{:.2f}×", r);
  return fmt::format("{:.0f}×", r);
}

}  // namespace xcall::bench
