// thread_sched.cpp — see thread_sched.hpp. The formats are the kernel's:
// stat is "tid (comm) S ...", where comm may itself hold spaces and
// parentheses, so the state is the first field after the last ')';
// schedstat is "exec_ns run_delay_ns timeslices".
#include "thread_sched.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace xcall::detail {

std::size_t read_task_file(pid_t tid, const char* name, char* text, std::size_t capacity) noexcept {
  // The path by hand: snprintf is not async-signal-safe.
  static constexpr char kHead[] = "/proc/self/task/";
  char path[64];
  char digits[16];
  int n = 0;
  for (unsigned v = static_cast<unsigned>(tid); n == 0 || v != 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  std::size_t len = 0;
  for (const char* p = kHead; *p != '\0'; ++p) path[len++] = *p;
  while (n > 0) path[len++] = digits[--n];
  path[len++] = '/';
  for (const char* p = name; *p != '\0' && len + 1 < sizeof(path); ++p) path[len++] = *p;
  path[len] = '\0';
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::size_t size = 0;
  for (ssize_t r; size + 1 < capacity && (r = ::read(fd, text + size, capacity - 1 - size)) > 0;) {
    size += static_cast<std::size_t>(r);
  }
  ::close(fd);
  text[size] = '\0';
  return size;
}

namespace {

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
