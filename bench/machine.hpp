// machine.hpp — the machine and the code a run measured: CPU model, cores,
// kernel, virtualized or not, load average, clock, compiler, git revision.
#pragma once

#include <string>

#include "results.hpp"

namespace xcall::bench {

/// Everything but load_after, which main fills at the end of the run.
machine_info describe_machine();

/// /proc/loadavg's first three fields ("8.61 10.56 8.09").
std::string load_average();

}  // namespace xcall::bench
