// sys.hpp — the raw system calls the floors are made of (membarrier, tgkill),
// as thin inline wrappers, and the kernel's count of a thread's write(2)
// calls. The futex wrapper is the tests' and the bench's shared one:
// <xcall_test_support/futex.hpp>.
#pragma once

#include <fcntl.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace xcall::bench {

inline int membarrier(int cmd, unsigned flags = 0) noexcept {
  return static_cast<int>(syscall(SYS_membarrier, cmd, flags, 0));
}

inline pid_t this_tid() noexcept { return static_cast<pid_t>(syscall(SYS_gettid)); }

inline int tgkill(pid_t tgid, pid_t tid, int sig) noexcept {
  return static_cast<int>(syscall(SYS_tgkill, tgid, tid, sig));
}

/// Write-class system calls (write, writev, pwrite, ...) the
/// calling thread has made so far: the kernel's own count, `syscw` in
/// /proc/thread-self/io; -1 when the kernel does not keep it
/// (CONFIG_TASK_IO_ACCOUNTING) or the file cannot be read. Reading it costs
/// an open, a read and a close, none of them counted.
inline std::int64_t thread_write_syscalls() noexcept {
  const int fd = ::open("/proc/thread-self/io", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "syscw:");
  if (at == nullptr) return -1;
  return static_cast<std::int64_t>(std::strtoll(at + 6, nullptr, 10));
}

}  // namespace xcall::bench
