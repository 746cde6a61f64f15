// fd_loop.cpp — the --delivery fd host's event loop (fd_loop.hpp).
//
// Ordering: nothing of its own. The doorbell fd's readability is the
// library's (a write happens only inside a loop_wait and is read by its
// end); the "guarded" mark brackets the guard as in hosts.cpp.
#include "fd_loop.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "host_marks.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/cpu.hpp"

namespace xcall_torture {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::uint32_t kDoorbellTag = 0;
constexpr std::uint32_t kTimerTag = 1;
constexpr std::uint32_t kStopTag = 2;
constexpr int kMaxEvents = 3;

constexpr unsigned kGuardedWaitOneIn = 8;    // waits made inside an irq_guard
constexpr unsigned kDoorbellOnlyOneIn = 4;   // waits with no timer pending left unarmed
constexpr unsigned kReadableLookOneIn = 4;   // looks at the fd before / after a wait
constexpr std::uint64_t kTimerMinUs = 200;   // the timer: 0.2 ..
constexpr std::uint64_t kTimerMaxUs = 5000;  // .. 5 ms

std::string cpu_text(xcall::cpu_t cpu) { return "CPU " + std::to_string(cpu); }

}  // namespace

fd_loop::fd_loop(run_state& run, xcall::cpu_t cpu, int stop_fd) : run_(run), cpu_(cpu) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  bool ok = ep_ >= 0 && timer_ >= 0;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kTimerTag;
  ok = ok && epoll_ctl(ep_, EPOLL_CTL_ADD, timer_, &ev) == 0;
  ev.data.u32 = kStopTag;
  ok = ok && (stop_fd < 0 || epoll_ctl(ep_, EPOLL_CTL_ADD, stop_fd, &ev) == 0);
  if (!ok) {
    fail(check::doorbell_fd, "the host of " + cpu_text(cpu) +
                                 " could not build its epoll set (epoll, timerfd): " +
                                 std::strerror(errno) + "; it only polls");
    if (ep_ >= 0) close(ep_);
    ep_ = -1;
  }
}

fd_loop::~fd_loop() {
  if (ep_ >= 0) close(ep_);
  if (timer_ >= 0) close(timer_);
}

void fd_loop::bind(const xcall::cpu_attachment& att) {
  const int fd = att.doorbell_fd();
  const std::string who = cpu_text(cpu_) + " attached with delivery_mode::fd";
  if (fd < 0) {
    fail(check::doorbell_fd, who + " has no doorbell fd (doorbell_fd() is -1)");
    return;
  }
  const int status = fcntl(fd, F_GETFL);
  const int flags = fcntl(fd, F_GETFD);
  if (status < 0 || flags < 0) {
    fail(check::doorbell_fd,
         who + ": its doorbell fd " + std::to_string(fd) + " is not open: " + std::strerror(errno));
    return;
  }
  if ((status & O_NONBLOCK) == 0 || (flags & FD_CLOEXEC) == 0) {
    fail(check::doorbell_fd, who + ": its doorbell fd " + std::to_string(fd) +
                                 " is not non-blocking and close-on-exec");
  } else {
    pass(check::doorbell_fd);
  }
  if (ep_ < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kDoorbellTag;
  // The previous attachment's fd left the set before its detach (unbind).
  if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail(check::doorbell_fd, who + ": epoll does not take its doorbell fd " + std::to_string(fd) +
                                 ": " + std::strerror(errno));
    return;
  }
  pass(check::doorbell_fd);
  doorbell_ = fd;
  check_not_readable("just after attach");
}

void fd_loop::unbind() {
  if (doorbell_ < 0) return;
  if (epoll_ctl(ep_, EPOLL_CTL_DEL, doorbell_, nullptr) != 0) {
    fail(check::doorbell_fd,
         "the doorbell fd " + std::to_string(doorbell_) + " of " + cpu_text(cpu_) +
             " could not leave the epoll set before detach: " + std::strerror(errno));
  }
  doorbell_ = -1;
}

void fd_loop::arm(rng& r) {
  const std::uint64_t us = kTimerMinUs + r.below(kTimerMaxUs - kTimerMinUs + 1);
  itimerspec t{};
  t.it_value.tv_sec = static_cast<time_t>(us / 1000000);
  t.it_value.tv_nsec = static_cast<long>(us % 1000000 * 1000);
  if (timerfd_settime(timer_, 0, &t, nullptr) == 0) timer_armed_ = true;
}

void fd_loop::take_timer() {
  std::uint64_t expirations = 0;
  (void)!read(timer_, &expirations, sizeof(expirations));  // EAGAIN: already taken
  timer_armed_ = false;
  add(event::timer_wakes);
}

void fd_loop::check_not_readable(const char* where) {
  pollfd p{doorbell_, POLLIN, 0};
  if (poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0) {
    fail(check::doorbell_fd, "the doorbell fd of " + cpu_text(cpu_) + " is readable " + where +
                                 ", outside a loop_wait (a write must land inside one and be "
                                 "read by its end)");
  } else {
    pass(check::doorbell_fd);
  }
}

int fd_loop::wait_events(epoll_event* events, int max, int timeout_ms) {
  int n;
  do {
    n = epoll_wait(ep_, events, max, timeout_ms);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    fail(check::doorbell_fd,
         "epoll_wait of the host of " + cpu_text(cpu_) + " failed: " + std::strerror(errno));
    return 0;
  }
  return n;
}

void fd_loop::wait(rng& r, const xcall::cpu_attachment& att, activity& slot) {
  if (ep_ < 0 || doorbell_ < 0) {  // the set could not be built: already failed
    xcall::poll();
    return;
  }
  if (att.doorbell_fd() != doorbell_) {
    fail(check::doorbell_fd, "the doorbell fd of " + cpu_text(cpu_) + " changed from " +
                                 std::to_string(doorbell_) + " to " +
                                 std::to_string(att.doorbell_fd()) + " within one attachment");
  }
  if (r.one_in(kReadableLookOneIn)) check_not_readable("while its host runs its own code");
  const bool guarded = r.one_in(kGuardedWaitOneIn);
  bool doorbell_only = false;
  if (!timer_armed_) {
    // Only the doorbell can wake a host with no timer: never where calls
    // stop coming for a while (stutter, the run's end: the stop fd wakes it).
    if (guarded || run_.opt.stutter_s > 0 || run_.stopping() || !r.one_in(kDoorbellOnlyOneIn)) {
      arm(r);
    } else {
      doorbell_only = true;
    }
  }
  std::optional<xcall::irq_guard> guard;
  if (guarded) {
    add(event::guarded_work);
    guard.emplace();
    run_.marks.set_guarded(cpu_, true);
  }
  const std::uint64_t runs_before = host_marks::own_runs();
  bool doorbell = false;
  {
    slot.begin(guarded         ? "epoll_wait inside an irq_guard"
               : doorbell_only ? "epoll_wait, woken only by the doorbell fd"
                               : "epoll_wait",
               cpu_);
    xcall::loop_wait w;
    const bool may_block = w.may_block();
    if (guarded) {
      if (!may_block) {
        fail(check::doorbell_fd, "a loop_wait inside an irq_guard on " + cpu_text(cpu_) +
                                     " said not to block (it must change nothing there)");
      }
    } else {
      add(event::fd_waits);
      if (!may_block) add(event::fd_no_block);
      if (doorbell_only) add(event::fd_doorbell_only);
    }
    epoll_event events[kMaxEvents];
    const int n = wait_events(events, kMaxEvents, may_block ? -1 : 0);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 == kDoorbellTag) doorbell = true;
      if (events[i].data.u32 == kTimerTag) take_timer();
    }
    if (guarded && doorbell) {
      fail(check::doorbell_fd, "the doorbell fd of " + cpu_text(cpu_) +
                                   " became readable while its host waited inside an irq_guard "
                                   "(where a loop_wait announces nothing)");
    }
    slot.end();
  }  // the loop_wait's end reads the fd if it was written, and runs the calls
  if (doorbell && !guarded) {
    add(event::fd_wakes);
    if (host_marks::own_runs() != runs_before) add(event::fd_wake_runs);
  }
  if (guard) {
    run_.marks.set_guarded(cpu_, false);
    guard.reset();  // runs what arrived, here, outside the mark
  }
  if (r.one_in(kReadableLookOneIn)) check_not_readable("after its loop_wait ended");
}

void fd_loop::block_parked(std::uint64_t us) {
  if (ep_ < 0) return;
  const auto end = clock::now() + std::chrono::microseconds(us);
  xcall::loop_wait w;  // parked (or inside a guard): inert
  if (!w.may_block()) {
    fail(check::doorbell_fd, "a loop_wait inside the blocking_region of " + cpu_text(cpu_) +
                                 " said not to block (it must change nothing there)");
  }
  bool said = false;
  for (auto now = clock::now(); now < end; now = clock::now()) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(end - now).count();
    epoll_event events[kMaxEvents];
    const int n = wait_events(events, kMaxEvents, static_cast<int>((left + 999) / 1000));
    bool stop = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 == kTimerTag) take_timer();
      if (events[i].data.u32 == kStopTag) stop = true;
      if (events[i].data.u32 == kDoorbellTag && !said) {
        said = true;
        fail(check::doorbell_fd, "the doorbell fd of " + cpu_text(cpu_) +
                                     " became readable while its host was inside a "
                                     "blocking_region (where a loop_wait announces nothing)");
      }
    }
    if (stop || said) break;
  }
  if (!said) pass(check::doorbell_fd);
}

}  // namespace xcall_torture
