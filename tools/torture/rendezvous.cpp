// rendezvous.cpp — the rendezvous function (rendezvous.hpp).
#include "rendezvous.hpp"

#include <chrono>
#include <string>
#include <thread>

#include "host_marks.hpp"
#include "report.hpp"
#include "starvation.hpp"
#include "tally.hpp"
#include "xcall/cpu.hpp"

namespace xcall_torture {
namespace {

std::string stragglers_line(const call_record& rec, xcall::cpu_t cpu, unsigned seen) {
  return rec.describe() + ": the function on CPU " + std::to_string(cpu) + " waited " +
         std::to_string(tool_wait_limit(rec.run).count() / 1000000) +
         " ms for the other targets of its call: " + std::to_string(seen) + " of " +
         std::to_string(rec.rendezvous_of) + " functions started";
}

}  // namespace

void rendezvous_arrive(call_record& rec, xcall::cpu_t cpu, bool in_signal) noexcept {
  // release: pairs with the acquire loads of the waiting targets below.
  rec.arrived.fetch_add(1, std::memory_order_release);
  if (in_signal) return;  // arrive only (file comment)
  const auto start = std::chrono::steady_clock::now();
  bool reported = false;
  // acquire: pairs with the other targets' release fetch_add above.
  for (unsigned spins = 0; rec.arrived.load(std::memory_order_acquire) < rec.rendezvous_of;
       ++spins) {
    xcall::poll();  // our CPU's calls (another rendezvous's included) still run
    if (spins < 256) continue;
    std::this_thread::sleep_for(std::chrono::microseconds(10));
    const auto waited = std::chrono::steady_clock::now() - start;
    if (reported || waited < tool_wait_limit(rec.run)) continue;
    // A poll() above may have run functions for seconds (nested waits of
    // their own, reported by their own checks): the others may have come
    // meanwhile. acquire: as in the loop condition.
    const unsigned seen = rec.arrived.load(std::memory_order_acquire);
    if (seen >= rec.rendezvous_of) break;
    reported = true;
    const std::string line = stragglers_line(rec, cpu, seen);
    const std::string excuse = starvation_excuse(waited);
    if (excuse.empty()) {
      fail(check::rendezvous, line);
      return;  // let the call finish: the run goes on and reports
    }
    add(event::starved_timeouts);
    console::error("!!! " + excuse + line);  // still waiting: a hang fails the hang check
  }
  pass(check::rendezvous);
}

}  // namespace xcall_torture
