// saturate.hpp — time arithmetic that saturates instead of wrapping: a
// caller may pass std::chrono::nanoseconds::max() to mean "forever", and a
// deadline or a doubled interval must then stay "forever", not turn into the
// distant past. Private to the library.
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
  return d >= room ? clock::time_point::max() : now + std::chrono::duration_cast<clock::duration>(d);
}

/// 2 * d, or nanoseconds::max() when that does not fit.
inline std::chrono::nanoseconds doubled(std::chrono::nanoseconds d) noexcept {
  return d > std::chrono::nanoseconds::max() / 2 ? std::chrono::nanoseconds::max() : d * 2;
}

}  // namespace xcall::detail
