// sys.hpp — the raw system calls the floors are made of (futex, membarrier,
// tgkill), as thin inline wrappers.
#pragma once

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace xcall::bench {

/// Sleeps while *word == expected (spurious returns possible: re-check).
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
          nullptr, nullptr, 0);
}

inline void futex_wake(std::atomic<std::uint32_t>* word, int count = 1) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

inline int membarrier(int cmd, unsigned flags = 0) noexcept {
  return static_cast<int>(syscall(SYS_membarrier, cmd, flags, 0));
}

inline pid_t this_tid() noexcept { return static_cast<pid_t>(syscall(SYS_gettid)); }

inline int tgkill(pid_t tgid, pid_t tid, int sig) noexcept {
  return static_cast<int>(syscall(SYS_tgkill, tgid, tid, sig));
}

}  // namespace xcall::bench
