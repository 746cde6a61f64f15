// thread_sched.hpp — what the kernel says about one thread of this process
// (/proc/self/task/TID/...): its scheduler state for stall reports (is
// the host of a stuck CPU asleep, a lost wake-up or a deadlock, or runnable
// but not given a CPU, starved by an overloaded machine?), and the file
// reader signal_doorbell.cpp uses for its signal masks. Private to the
// library.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace xcall::detail {

struct thread_sched_sample {
  char state = 0;                  ///< 'R' running or runnable, 'S', 'D', 'T', ...; 0 unknown
  std::int64_t run_delay_ns = -1;  ///< time spent runnable but not running, in total; -1 unknown
};

/// Reads /proc/self/task/TID/`name` into `text` (NUL-terminated, at most
/// capacity - 1 bytes) with open/read/close only: async-signal-safe. Returns
/// its size, or 0 when it cannot be read.
std::size_t read_task_file(pid_t tid, const char* name, char* text, std::size_t capacity) noexcept;

/// Reads both files with read_task_file(): async-signal-safe, as a stall
/// watchdog may run inside a function run by a doorbell signal's handler.
/// A tid of 0, a thread that is gone or a kernel without schedstat give
/// the unknown values.
thread_sched_sample sample_thread_sched(pid_t tid) noexcept;

}  // namespace xcall::detail
