// thread_sched.cpp — see thread_sched.hpp. The formats are the kernel's:
// stat is "tid (comm) S ...", where comm may itself hold spaces and
// parentheses, so the state is the first field after the last ')';
// schedstat is "exec_ns run_delay_ns timeslices".
#include "thread_sched.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace xcall::detail {
namespace {

/// Reads a small /proc file of task `tid` into `text`; returns its size, or 0.
std::size_t read_task_file(pid_t tid, const char* name, char* text, std::size_t capacity) noexcept {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/task/%d/%s", static_cast<int>(tid), name);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t size = 0;
  for (ssize_t n; size + 1 < capacity && (n = ::read(fd, text + size, capacity - 1 - size)) > 0;) {
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text[size] = '\0';
  return size;
}

char state_from_stat(const char* text, std::size_t size) noexcept {
  const char* close = nullptr;
  for (const char* p = text; p < text + size; ++p) {
    if (*p == ')') close = p;
  }
  if (close == nullptr || close + 2 >= text + size || close[1] != ' ') return 0;
  return close[2];
}

std::int64_t run_delay_from_schedstat(const char* text) noexcept {
  const char* p = std::strchr(text, ' ');  // past exec_ns
  if (p == nullptr) return -1;
  std::int64_t value = 0;
  bool digits = false;
  for (++p; *p >= '0' && *p <= '9'; ++p) {
    value = value * 10 + (*p - '0');
    digits = true;
  }
  return digits ? value : -1;
}

}  // namespace

thread_sched_sample sample_thread_sched(pid_t tid) noexcept {
  thread_sched_sample s;
  if (tid <= 0) return s;
  char text[1024];
  if (const std::size_t n = read_task_file(tid, "stat", text, sizeof(text))) {
    s.state = state_from_stat(text, n);
  }
  if (read_task_file(tid, "schedstat", text, sizeof(text)) != 0) {
    s.run_delay_ns = run_delay_from_schedstat(text);
  }
  return s;
}

}  // namespace xcall::detail
