// rendezvous.cpp — the rendezvous function (rendezvous.hpp).
#include "rendezvous.hpp"

#include <string>

#include "tally.hpp"
#include "tool_wait.hpp"

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
  // acquire: pairs with the other targets' release fetch_add above. Our
  // CPU's calls (another rendezvous's included) still run: tool_wait polls.
  const auto met = [&] { return rec.arrived.load(std::memory_order_acquire) >= rec.rendezvous_of; };
  const auto late = [&] {
    return stragglers_line(rec, cpu, rec.arrived.load(std::memory_order_acquire));
  };
  // After a failure, let the call finish: the run goes on and reports.
  if (tool_wait(rec.run, check::rendezvous, met, late, /*give_up=*/true)) {
    pass(check::rendezvous);
  }
}

}  // namespace xcall_torture
