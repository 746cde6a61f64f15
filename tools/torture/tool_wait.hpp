// tool_wait.hpp — the tool's own waits (an RPC's completion flag, an async
// descriptor in flight, the other targets of a rendezvous), which the
// library's stall watchdog does not see: they poll while they wait and
// report once when they take longer than tool_wait_limit().
//
// Ordering: whatever done() reads; the loop adds none.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "report.hpp"
#include "run_state.hpp"
#include "starvation.hpp"
#include "tally.hpp"
#include "xcall/cpu.hpp"

namespace xcall_torture {

/// Waits until done(): xcall::poll() on every turn (a no-op unless the
/// thread acts as a CPU, which must keep draining), 10 µs sleeps after the
/// first 256. Past tool_wait_limit() it looks at done() once more (a poll
/// may have run nested functions for seconds meanwhile) and reports late()
/// once: as a failure of `c`, or, when the process was starved of a CPU for
/// half of the wait, as a note, and waits on. After a failure it waits on
/// unless `give_up`, and then returns false; it returns true once done().
template <class Done, class Late>
bool tool_wait(const run_state& run, check c, Done&& done, Late&& late, bool give_up) {
  const auto start = std::chrono::steady_clock::now();
  bool reported = false;
  for (unsigned spins = 0; !done(); ++spins) {
    xcall::poll();
    if (spins < 256) continue;
    std::this_thread::sleep_for(std::chrono::microseconds(10));
    const auto waited = std::chrono::steady_clock::now() - start;
    if (reported || waited < tool_wait_limit(run) || done()) continue;
    reported = true;
    const std::string line = late();
    const std::string excuse = starvation_excuse(waited);
    if (!excuse.empty()) {
      add(event::starved_timeouts);
      console::error("!!! " + excuse + line);
      continue;  // still waiting: a hang fails the hang check or the end checks
    }
    fail(c, line);
    if (give_up) return false;
  }
  return true;
}

}  // namespace xcall_torture
