// thread_sched.hpp — what the kernel's scheduler says about one thread of
// this process (/proc/self/task/TID/{stat,schedstat}), for stall reports: is
// the host of a stuck CPU asleep (a lost wake-up, a deadlock), or runnable
// but not given a CPU (starved by an overloaded machine)? Private to the
// library.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace xcall::detail {

struct thread_sched_sample {
  char state = 0;                  ///< 'R' running or runnable, 'S', 'D', 'T', ...; 0 unknown
  std::int64_t run_delay_ns = -1;  ///< time spent runnable but not running, in total; -1 unknown
};

/// Reads both files with open/read/close only: async-signal-safe, as a stall
/// watchdog may run inside a function run by a doorbell signal's handler.
/// A tid of 0, a thread that is gone or a kernel without schedstat give
/// the unknown values.
thread_sched_sample sample_thread_sched(pid_t tid) noexcept;

}  // namespace xcall::detail
