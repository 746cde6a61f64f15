// affinity.hpp — where the bench's threads run.
//
// Every two-party measurement (floors, peers and xcall alike) puts the
// *target* (the thread that runs the function, or answers the ping) on
// target_core() and the *caller* on caller_core(): the first and the second
// host CPU the process may use. xcall's own pinning (domain_options::
// pin_threads) puts owned CPU 0 on the first allowed host CPU as well, so the
// bench and the library agree on where the target runs.
//
// Thread safety: save_startup_affinity() once, before any thread starts.
#pragma once

#include <vector>

namespace xcall::bench {

/// Records the process's allowed host CPUs (call once, at start-up).
void save_startup_affinity();

/// The allowed host CPUs at start-up, in increasing order.
const std::vector<int>& allowed_cpus();
unsigned host_cores();

int target_core();
int caller_core();
/// The k-th allowed CPU other than target_core(), cyclically (producers).
int producer_core(unsigned k);

/// Pins the calling thread to one host CPU; unpin_self() restores the
/// start-up set.
void pin_self(int host_cpu);
void unpin_self();

}  // namespace xcall::bench
