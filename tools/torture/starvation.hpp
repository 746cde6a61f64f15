// starvation.hpp — how much of a stretch of time this process was kept off
// the CPUs by the machine. On a 2-core VM, two crowd runs at once make the
// guest scheduler leave runnable threads waiting for seconds (a separate
// process that sleeps 50 ms at a time measured 1-5 s waits, all of it
// runnable time: docs/torture.md, "Starved hosts"); then a 5 s tool timeout
// says nothing about the library.
//
// The watchdog thread, which sleeps 100 ms at a time and needs almost no CPU,
// samples its own schedstat run_delay (time runnable but not running) every
// tick. A healthy machine gives it a CPU within microseconds; the share of a
// stretch it spent waiting for one is how starved every thread of the
// process was then.
//
// Thread safety: sample() from the watchdog thread; fraction() from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace xcall_torture {

class starvation_meter {
 public:
  /// Reads /proc/thread-self/schedstat; call from one thread, regularly.
  void sample();
  /// The share (0..1) of [from_ns, to_ns] (steady_clock times) the sampling
  /// thread spent runnable but not running; negative when unknown (no
  /// samples around that stretch, or no schedstat).
  double fraction(std::int64_t from_ns, std::int64_t to_ns) const;

 private:
  struct point {
    std::int64_t at_ns;
    std::int64_t run_delay_ns;
  };
  mutable std::mutex lock_;
  std::deque<point> points_;  // oldest first, at most kKeep
};

starvation_meter& process_starvation();

/// A timeout over the last `span` (ending now) is excused when the process
/// was starved for at least half of it. Returns the note to print ("not a
/// failure: ...") or "" when it must stay a failure.
std::string starvation_excuse(std::chrono::nanoseconds span);

}  // namespace xcall_torture
