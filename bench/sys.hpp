// sys.hpp — the raw system calls the floors are made of (membarrier, tgkill),
// as thin inline wrappers. The futex wrapper is the tests' and the bench's
// shared one: <xcall_test_support/futex.hpp>.
#pragma once

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace xcall::bench {

inline int membarrier(int cmd, unsigned flags = 0) noexcept {
  return static_cast<int>(syscall(SYS_membarrier, cmd, flags, 0));
}

inline pid_t this_tid() noexcept { return static_cast<pid_t>(syscall(SYS_gettid)); }

inline int tgkill(pid_t tgid, pid_t tid, int sig) noexcept {
  return static_cast<int>(syscall(SYS_tgkill, tgid, tid, sig));
}

}  // namespace xcall::bench
