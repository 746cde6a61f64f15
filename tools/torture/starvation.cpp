// starvation.cpp — see starvation.hpp.
#include "starvation.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>

namespace xcall_torture {
namespace {

constexpr std::size_t kKeep = 1200;  // 2 minutes of 100 ms ticks

}  // namespace

void starvation_meter::sample() {
  std::ifstream in("/proc/thread-self/schedstat");
  std::int64_t exec_ns = 0, run_delay_ns = -1;
  if (!(in >> exec_ns >> run_delay_ns)) return;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::lock_guard<std::mutex> g(lock_);
  points_.push_back({now, run_delay_ns});
  if (points_.size() > kKeep) points_.pop_front();
}

double starvation_meter::fraction(std::int64_t from_ns, std::int64_t to_ns) const {
  std::lock_guard<std::mutex> g(lock_);
  const point* first = nullptr;  // the last sample at or before from_ns
  const point* last = nullptr;   // the last sample at or before to_ns
  for (const point& p : points_) {
    if (p.at_ns <= from_ns) first = &p;
    if (p.at_ns <= to_ns) last = &p;
  }
  if (first == nullptr && !points_.empty() && points_.front().at_ns <= to_ns) {
    first = &points_.front();  // the stretch began before our history
  }
  if (first == nullptr || last == nullptr || last->at_ns <= first->at_ns) return -1;
  return static_cast<double>(last->run_delay_ns - first->run_delay_ns) /
         static_cast<double>(last->at_ns - first->at_ns);
}

starvation_meter& process_starvation() {
  static starvation_meter meter;
  return meter;
}

std::string starvation_excuse(std::chrono::nanoseconds span) {
  const std::int64_t to_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
  const std::int64_t from_ns = to_ns - span.count();
  const double f = process_starvation().fraction(from_ns, to_ns);
  if (f < 0.5) return {};
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "not a failure, the process was starved of CPUs (the watchdog thread waited "
                "runnable for %.0f%% of the last %.1f s): ",
                100 * f, static_cast<double>(to_ns - from_ns) / 1e9);
  return buf;
}

}  // namespace xcall_torture
