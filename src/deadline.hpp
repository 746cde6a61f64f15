// deadline.hpp — the library's one home for deadlines and sleep budgets.
// Its arithmetic saturates instead of wrapping: a caller may pass
// std::chrono::nanoseconds::max() to mean "forever", and a deadline or a
// doubled interval must then stay "forever", not turn into the distant past.
// A sleep budget is a duration where negative means "no limit" (futex.hpp).
// Private to the library.
//
// Ordering: none; plain values.
#pragma once

#include <chrono>

namespace xcall::detail {

/// now + d, or time_point::max() when that does not fit; a negative d
/// counts as zero.
inline std::chrono::steady_clock::time_point deadline_after(
    std::chrono::steady_clock::time_point now, std::chrono::nanoseconds d) noexcept {
  using clock = std::chrono::steady_clock;
  if (d.count() <= 0) return now;
  const auto room = clock::time_point::max() - now;
  return d >= room ? clock::time_point::max()
                   : now + std::chrono::duration_cast<clock::duration>(d);
}

/// 2 * d, or nanoseconds::max() when that does not fit.
inline std::chrono::nanoseconds doubled(std::chrono::nanoseconds d) noexcept {
  return d > std::chrono::nanoseconds::max() / 2 ? std::chrono::nanoseconds::max() : d * 2;
}

/// What is left until `deadline` as a sleep budget: zero once it passed,
/// negative (no limit) for time_point::max().
inline std::chrono::nanoseconds time_left(std::chrono::steady_clock::time_point deadline,
                                          std::chrono::steady_clock::time_point now) noexcept {
  if (deadline == std::chrono::steady_clock::time_point::max()) return std::chrono::nanoseconds(-1);
  if (deadline <= now) return std::chrono::nanoseconds(0);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
}

/// The shorter of two sleep budgets (negative: no limit).
inline std::chrono::nanoseconds shorter(std::chrono::nanoseconds a,
                                        std::chrono::nanoseconds b) noexcept {
  if (a.count() < 0) return b;
  if (b.count() < 0) return a;
  return a < b ? a : b;
}

}  // namespace xcall::detail
