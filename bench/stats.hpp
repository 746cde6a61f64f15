// stats.hpp — latency samples to percentiles.
//
// Percentiles are nearest-rank on the sorted samples (p50 of 1000 samples is
// the 500th smallest): no interpolation, so every figure reported is one that
// was actually observed.
#pragma once

#include <cstddef>
#include <vector>

namespace xcall::bench {

struct summary {
  std::size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  // nanoseconds
  bool empty() const noexcept { return n == 0; }
};

/// Nearest-rank percentile (q in [0, 1]) of sorted samples; 0 when empty.
double percentile(const std::vector<double>& sorted, double q);

/// Sorts `samples` in place and summarises them.
summary summarize(std::vector<double>& samples);

/// The latency distribution as `points` quantiles of sorted samples, from 0
/// to 1 - 1/points^2 on a log-odds-like grid so the tail (p99, p99.9) has as
/// many points as the body: pairs (quantile, nanoseconds), for the charts.
std::vector<std::pair<double, double>> quantile_curve(const std::vector<double>& sorted,
                                                      std::size_t points);

}  // namespace xcall::bench
