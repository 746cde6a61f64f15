// hotplug.cpp — the tool's cpu_down/cpu_up (hotplug.hpp).
//
// Ordering: the online tracker's begin/end and the hotplug lock (online.hpp)
// carry every edge; the thread-local stack of transitions orders nothing.
#include "hotplug.hpp"

#include <algorithm>
#include <string>
#include <system_error>

#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {
namespace {

using xcall::cpu_t;

/// Transitions this thread is in the middle of, outermost first: a
/// function drained while one waits may start another (--nesting).
struct transition {
  cpu_t cpu;
  bool disturbed;  ///< a nested transition of the same CPU happened meanwhile
};
constexpr unsigned kMaxTransitions = 2 * kMaxNesting + 2;
thread_local transition t_stack[kMaxTransitions];
thread_local unsigned t_depth = 0;

transition* find_mine(cpu_t cpu) noexcept {
  for (unsigned i = 0; i < t_depth; ++i) {
    if (t_stack[i].cpu == cpu) return &t_stack[i];
  }
  return nullptr;
}

}  // namespace

bool may_take_down(const run_state& run, cpu_t cpu) {
  // A random walk would drift to "almost all offline" and test little else.
  const cpu_t keep = std::max<cpu_t>(1, run.nr_cpus / 2);
  cpu_t others = 0;
  for (cpu_t c = 0; c < run.nr_cpus; ++c) {
    if (c != cpu && run.online.stable_online(c)) ++others;
  }
  return others >= keep;
}

cpu_t transition_in_progress(rng& r) noexcept {
  return t_depth == 0 ? xcall::no_cpu : t_stack[r.below(t_depth)].cpu;
}

bool hotplug_step(run_state& run, cpu_t cpu, bool down, activity& slot) {
  if (down && !may_take_down(run, cpu)) return false;
  transition* const outer = find_mine(cpu);
  if (outer == nullptr && t_depth == kMaxTransitions) return false;
  xcall::domain& dom = *run.dom;
  slot.begin(down ? "cpu_down" : "cpu_up", cpu);
  if (outer != nullptr) {
    outer->disturbed = true;  // the outer bracket covers this one
  } else {
    t_stack[t_depth++] = transition{cpu, false};
    run.online.begin(cpu);
  }
  const std::error_code ec = down ? dom.cpu_down(cpu) : dom.cpu_up(cpu);
  const bool now_online = dom.cpu_online(cpu);
  bool disturbed = outer != nullptr;
  if (outer == nullptr) {
    disturbed = t_stack[--t_depth].disturbed;
    run.online.end(cpu, now_online);
  }
  add(down ? event::cpu_down : event::cpu_up);
  const std::string what = std::string(down ? "cpu_down(" : "cpu_up(") + std::to_string(cpu) + ")";
  if (ec) {
    fail(check::hotplug, what + " returned " + ec.message());
  } else if (!disturbed && now_online == down) {
    fail(check::hotplug, "CPU " + std::to_string(cpu) + " is " +
                             (now_online ? "online after cpu_down" : "offline after cpu_up"));
  } else {
    pass(check::hotplug);
  }
  return true;
}

}  // namespace xcall_torture
