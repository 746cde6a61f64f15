// hotplug.hpp — one cpu_down/cpu_up of an owned CPU as the tool makes it:
// by the hotplug thread (--onoff-interval) and by functions that act
// (--nesting), under the hotplug lock held for writing, bracketed for the
// online tracker, within the rule "never the last CPU, at most half of them
// offline", and checked.
//
// A function that a CPU host drains while its own cpu_down/cpu_up waits
// may take the same CPU up or down again: the lock is reentrant for its
// writer, the outer transition's bracket covers the inner one (the tracker
// is not moved twice), and the outcome of an outer transition disturbed
// that way is not checked (either state is right then).
//
// Thread safety: any thread holding the hotplug lock for writing; the
// transitions in progress are the thread's own (thread-local).
//
// Memory ordering: the tracker's (online.hpp) and the lock's; nothing here.
#pragma once

#include "run_state.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

class activity;

/// Whether `cpu` may go down now: at least max(1, nr_cpus / 2) other CPUs
/// stay online (in the tool's view; under the write lock it is exact).
bool may_take_down(const run_state& run, xcall::cpu_t cpu);

/// cpu_down (`down`) or cpu_up of `cpu`, with the caller holding the
/// hotplug lock for writing; `slot` says so while it lasts. Returns false,
/// doing nothing, when the rule forbids taking it down.
bool hotplug_step(run_state& run, xcall::cpu_t cpu, bool down, activity& slot);

/// A CPU whose transition this thread is in the middle of (picked by `r`),
/// or no_cpu.
xcall::cpu_t transition_in_progress(rng& r) noexcept;

}  // namespace xcall_torture
