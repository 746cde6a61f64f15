// plot.hpp — PNG charts of a run with gnuplot (Debian gnuplot-nox): latency
// distributions per idle mode beside the floors and peers, and the scaling
// curves per engine. Without gnuplot it says so and writes nothing.
#pragma once

#include <string>
#include <vector>

#include "results.hpp"

namespace xcall::bench {

/// Writes the charts into `dir` (created if missing); returns the files
/// written (empty when gnuplot is missing or fails, with a message on stderr).
std::vector<std::string> write_plots(const results& r, const std::string& dir);

}  // namespace xcall::bench
