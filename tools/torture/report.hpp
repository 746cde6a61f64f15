// report.hpp — everything xcall-torture prints: the console (stat lines on
// stdout, failures on stderr, a live progress line when stdout is a
// terminal), the periodic statistics line, the final report and the JSON
// summary.
//
// Thread safety: console functions from any thread (one mutex); a reporter
// is driven by the main thread, and by the watchdog thread when it fires.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "run_state.hpp"
#include "tally.hpp"
#include "xcall/stats.hpp"

namespace xcall_torture {

namespace console {
/// Progress lines only if stdout is a terminal.
void init();
void line(const std::string& text);   ///< stdout
void error(const std::string& text);  ///< stderr
void progress(const std::string& text);
}  // namespace console

class reporter {
 public:
  explicit reporter(const run_state& run);

  /// Called by the main thread every few tens of milliseconds: prints the
  /// statistics line when one is due, and refreshes the progress line.
  void tick();
  /// "!!! " once any failure was seen, then operations by kind, events,
  /// checks; with --delivery signal or fd, or --proxy, also the delivery
  /// counters summed over `cpus` (when given; fd: with the tool's fd waits).
  std::string stat_line(const totals& t, const std::vector<xcall::cpu_stats>& cpus) const;

  /// The end of the run: per-CPU table, totals, checks, verdict line; and the
  /// JSON file if asked for. `note` explains a FAILURE not tied to a check.
  void final_report(const std::vector<xcall::cpu_stats>& cpus, bool success,
                    const std::string& note) const;

 private:
  void write_json(const totals& t, const std::vector<xcall::cpu_stats>& cpus, bool success,
                  const std::string& note) const;
  /// --delivery signal or fd, or --proxy: the delivery counters are worth showing.
  bool shows_delivery() const noexcept;

  const run_state& run_;
  std::chrono::steady_clock::time_point next_stat_;
  std::chrono::steady_clock::time_point next_progress_;
};

}  // namespace xcall_torture
