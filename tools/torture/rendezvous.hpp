// rendezvous.hpp — the `rendezvous` operation's function: every target of one
// waiting multi-CPU call waits, inside the function, until the functions on
// all the other targets have started (the shape of stop_machine or a text
// patch: CPUs meet inside one call).
//
// It composes only if every waiter keeps the others going: a target that
// waits polls (xcall::poll(), so a call queued for its CPU — another
// rendezvous included — still runs), and the caller's wait runs the calls of
// every parked target of the call (proxy). A function that the caller runs
// as one parked target's proxy waits too: its polling runs the other parked
// targets of the caller's wait, nested (src/nudge.hpp). Inside the doorbell
// signal's handler the function arrives only (a wait there is not
// async-signal-safe).
//
// The caller holds the hotplug read lock for the whole call, so the targets
// it expects are exactly those that run: a target that went offline would
// never arrive.
//
// Ordering: arrivals are a release fetch_add; the waiters' acquire loads pair
// with it. The count is published to the handlers by the call itself.
#pragma once

#include "checks.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

/// Called by handle_call() for a `rendezvous` record on `cpu`.
void rendezvous_arrive(call_record& rec, xcall::cpu_t cpu, bool in_signal) noexcept;

}  // namespace xcall_torture
