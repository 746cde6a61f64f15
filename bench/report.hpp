// report.hpp — turning a run's results into what people read: the tables
// (every xcall figure beside its floor and nearest peer, as a ratio), the
// target lines (MET / NOT MET), Markdown for BENCHMARKS.md and JSON.
//
// The bench reports; it never fails on a figure.
#pragma once

#include <string>
#include <vector>

#include "results.hpp"

namespace xcall::bench {

enum class verdict { met, not_met, not_measured };

struct target_line {
  std::string target;  ///< what the issue asks ("poll: single wait p50 ≤ 1.5× cache-line floor")
  std::string measured;  ///< what this run found
  verdict v = verdict::not_measured;
  std::string text() const;  ///< "target: ... — measured ... — MET"
};

std::vector<target_line> evaluate_targets(const results& r);

/// The generated Markdown section (machine, headline table, targets, detail
/// tables), between the BENCHMARKS.md markers.
std::string markdown_report(const results& r);

/// Writes the section into `path`: between the lines that hold nothing but
/// the markers `<!-- xcall-bench:begin -->` and `<!-- xcall-bench:end -->`
/// when the file has them (quoted in prose they do not count), appended when
/// it has not, the whole file when there is none.
bool write_markdown(const results& r, const std::string& path);

bool write_json(const results& r, const std::string& path);

}  // namespace xcall::bench
