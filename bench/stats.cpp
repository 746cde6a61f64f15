// stats.cpp — percentiles (stats.hpp).
#include "stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace xcall::bench {

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest sample with at least q of the samples <= it.
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(q * n));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

summary summarize(std::vector<double>& samples) {
  summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.n = samples.size();
  s.min = samples.front();
  s.max = samples.back();
  s.p50 = percentile(samples, 0.50);
  s.p90 = percentile(samples, 0.90);
  s.p99 = percentile(samples, 0.99);
  s.p999 = percentile(samples, 0.999);
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.n);
  return s;
}

std::vector<std::pair<double, double>> quantile_curve(const std::vector<double>& sorted,
                                                      std::size_t points) {
  std::vector<std::pair<double, double>> curve;
  if (sorted.empty() || points < 2) return curve;
  curve.reserve(points);
  // Quantiles 1 - 10^-x for x from 0 to log10(n): even steps in "nines".
  const double max_nines = std::log10(static_cast<double>(sorted.size()));
  for (std::size_t i = 0; i < points; ++i) {
    const double x = max_nines * static_cast<double>(i) / static_cast<double>(points - 1);
    const double q = 1.0 - std::pow(10.0, -x);
    curve.emplace_back(q, percentile(sorted, q));
  }
  return curve;
}

}  // namespace xcall::bench
