// fd_delivery_test.cpp — delivery_mode::fd: the doorbell file descriptor of
// an attached CPU and the loop_wait around a host's event-loop wait
// (xcall/cpu.hpp, src/fd_doorbell.cpp). The hosts block in epoll_wait with
// the descriptor in their set, as a reactor would.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "app_host.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::delivery_mode;
using xcall::domain;
using xcall_test::app_host;
using xcall_test::attached_domain_options;
using xcall_test::eventually;
using xcall_test::run_record;
using xcall_test::run_with_deadline;

const std::error_code kOk{};
constexpr xcall::attach_options kFd{delivery_mode::fd, false};
constexpr auto kDeadline = std::chrono::seconds(30);

/// Whether `fd` is readable now.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

std::uint64_t fd_writes(const domain& d, cpu_t cpu) { return d.stats()[cpu].doorbell_fd_writes; }

/// Waits for a flag another thread sets.
void await(const std::atomic<bool>& flag) {
  unsigned i = 0;
  while (!flag.load(std::memory_order_acquire)) xcall_test::backoff(i);
}

/// An epoll set holding one descriptor.
class epoll_set {
 public:
  explicit epoll_set(int fd) : ep_(epoll_create1(EPOLL_CLOEXEC)) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    EXPECT_EQ(epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev), 0);
  }
  ~epoll_set() { ::close(ep_); }
  epoll_set(const epoll_set&) = delete;
  epoll_set& operator=(const epoll_set&) = delete;
  /// Events returned (0 on timeout).
  int wait(int timeout_ms) {
    epoll_event ev{};
    int n;
    do {
      n = epoll_wait(ep_, &ev, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n;
  }

 private:
  int ep_;
};

/// A reactor: loop_wait around epoll_wait(-1) on the doorbell fd until
/// stop_requested() (which a call must follow, to wake it: stop_loop()).
struct epoll_loop {
  std::atomic<int> wakes{0};
  std::atomic<int> not_blocking{0};
  std::atomic<bool> waiting{false};  ///< has announced at least once

  void operator()(app_host& h) {
    epoll_set ep(h.doorbell_fd());
    while (!h.stop_requested()) {
      xcall::loop_wait w;
      if (!w.may_block()) not_blocking.fetch_add(1);
      waiting.store(true, std::memory_order_release);
      if (ep.wait(w.may_block() ? -1 : 0) > 0) wakes.fetch_add(1);
    }
  }
};

/// Ends an epoll_loop host: the stop request, then a call to wake it.
void stop_loop(domain& d, app_host& host, cpu_t cpu) {
  host.request_stop();
  EXPECT_EQ(d.call_function_single(cpu, &xcall_test::noop, nullptr, true), kOk);
  host.join();
}

class FdDeliveryTest : public xcall_test::engine_test {};

TEST_P(FdDeliveryTest, TheDescriptorIsANonBlockingCloseOnExecEventfd) {
  domain d(attached_domain_options(1, engine()));
  std::thread([&] {
    xcall::cpu_attachment att = d.attach(0, kFd);
    const int fd = att.doorbell_fd();
    ASSERT_GE(fd, 0);
    EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_FALSE(readable(fd)) << "readable with nothing queued";
  }).join();
  std::thread([&] {
    xcall::cpu_attachment att = d.attach(0, {delivery_mode::poll, false});
    EXPECT_EQ(att.doorbell_fd(), -1) << "poll delivery has no doorbell fd";
  }).join();
  EXPECT_EQ(xcall::cpu_attachment().doorbell_fd(), -1) << "an empty handle has none";
}

TEST_P(FdDeliveryTest, AHostBlockedInEpollIsWokenAndRunsTheCallOnItsThread) {
  domain d(attached_domain_options(1, engine()));
  epoll_loop loop;
  app_host host(d, 0, kFd, std::ref(loop));
  await(loop.waiting);
  std::this_thread::sleep_for(20ms);  // in epoll_wait(-1) by now
  run_with_deadline(kDeadline, "a waiting call to a host blocked in epoll_wait", [&] {
    for (int i = 0; i < 20; ++i) {
      run_record r;
      ASSERT_EQ(d.call_function_single(0, &run_record::record, &r, true), kOk);
      EXPECT_EQ(r.runs.load(), 1);
      EXPECT_EQ(r.tid.load(), host.tid()) << "ran on another thread";
      EXPECT_EQ(r.cpu.load(), 0u);
    }
    EXPECT_GE(loop.wakes.load(), 1) << "epoll_wait never returned the doorbell";
    EXPECT_GE(fd_writes(d, 0), 1u);
    EXPECT_LE(fd_writes(d, 0), 20u) << "more than one write per call";
    stop_loop(d, host, 0);
  });
}

TEST_P(FdDeliveryTest, NoWriteWhileTheHostRunsItsOwnCode) {
  domain d(attached_domain_options(1, engine()));
  std::atomic<bool> sent{false};
  std::atomic<bool> was_readable{true};
  std::atomic<bool> ran_at_poll{false};
  run_record r;
  app_host host(d, 0, kFd, [&](app_host& h) {
    h.compute([&] { return sent.load(std::memory_order_acquire); });
    was_readable.store(readable(h.doorbell_fd()));
    xcall::poll();
    ran_at_poll.store(r.runs.load() == 1);
  });
  xcall::call_single_data csd(&run_record::record, &r);
  ASSERT_EQ(d.call_function_single_async(0, csd), kOk);
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(r.runs.load(), 0) << "poll delivery runs calls at safe points only";
  sent.store(true, std::memory_order_release);
  host.join();
  EXPECT_FALSE(was_readable.load()) << "the fd became readable for a running host";
  EXPECT_TRUE(ran_at_poll.load());
  EXPECT_EQ(fd_writes(d, 0), 0u);
}

TEST_P(FdDeliveryTest, ABurstToABlockedHostCostsOneWrite) {
  domain d(attached_domain_options(1, engine()));
  constexpr int kBurst = 16;
  std::atomic<bool> announced{false};
  std::atomic<bool> burst_done{false};
  std::atomic<int> events{-1};
  std::vector<run_record> records(kBurst);
  app_host host(d, 0, kFd, [&](app_host& h) {
    epoll_set ep(h.doorbell_fd());
    xcall::loop_wait w;
    EXPECT_TRUE(w.may_block());
    announced.store(true, std::memory_order_release);
    events.store(ep.wait(-1));
    await(burst_done);  // the rest of the burst arrives while we are "blocked"
  });                   // the loop_wait's end runs the burst
  await(announced);
  std::vector<std::unique_ptr<xcall::call_single_data>> csds;
  for (auto& rec : records) {
    csds.push_back(std::make_unique<xcall::call_single_data>(&run_record::record, &rec));
  }
  for (auto& csd : csds) ASSERT_EQ(d.call_function_single_async(0, *csd), kOk);
  burst_done.store(true, std::memory_order_release);
  host.join();
  EXPECT_EQ(events.load(), 1);
  for (const auto& rec : records) EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_EQ(fd_writes(d, 0), 1u) << "a burst to a blocked host wrote more than once";
}

TEST_P(FdDeliveryTest, ACallQueuedBeforeTheAnnouncementSaysDoNotBlock) {
  domain d(attached_domain_options(1, engine()));
  std::atomic<bool> sent{false};
  std::atomic<bool> may_block{true};
  std::atomic<bool> was_readable{true};
  std::atomic<int> runs_inside{-1};
  run_record r;
  app_host host(d, 0, kFd, [&](app_host& h) {
    await(sent);
    {
      xcall::loop_wait w;
      may_block.store(w.may_block());
      was_readable.store(readable(h.doorbell_fd()));
      runs_inside.store(r.runs.load());
    }
  });
  xcall::call_single_data csd(&run_record::record, &r);
  ASSERT_EQ(d.call_function_single_async(0, csd), kOk);
  sent.store(true, std::memory_order_release);
  host.join();
  EXPECT_FALSE(may_block.load()) << "a host would block with a call waiting";
  EXPECT_FALSE(was_readable.load()) << "nobody should have written: the host was running";
  EXPECT_EQ(runs_inside.load(), 0);
  EXPECT_EQ(r.runs.load(), 1) << "the end of the loop_wait runs what is queued";
  EXPECT_EQ(fd_writes(d, 0), 0u);
}

TEST_P(FdDeliveryTest, ACallBetweenTheAnnouncementAndTheWaitMakesTheWaitReturn) {
  domain d(attached_domain_options(1, engine()));
  std::atomic<bool> announced{false};
  std::atomic<bool> sent{false};
  std::atomic<int> events{-1};
  run_record r;
  app_host host(d, 0, kFd, [&](app_host& h) {
    epoll_set ep(h.doorbell_fd());
    xcall::loop_wait w;
    EXPECT_TRUE(w.may_block());
    announced.store(true, std::memory_order_release);
    await(sent);
    events.store(ep.wait(10'000));  // must return at once
  });
  await(announced);
  xcall::call_single_data csd(&run_record::record, &r);
  ASSERT_EQ(d.call_function_single_async(0, csd), kOk);
  sent.store(true, std::memory_order_release);
  host.join();
  EXPECT_EQ(events.load(), 1) << "the call's write was lost";
  EXPECT_EQ(r.runs.load(), 1);
  EXPECT_EQ(fd_writes(d, 0), 1u);
}

TEST_P(FdDeliveryTest, DetachRunsTheQueueThenClosesTheDescriptor) {
  domain d(attached_domain_options(1, engine()));
  std::atomic<bool> attached{false};
  std::atomic<bool> sent{false};
  std::atomic<int> fd{-1};
  run_record r;
  std::thread host([&] {
    xcall::cpu_attachment att = d.attach(0, kFd);
    fd.store(att.doorbell_fd());
    attached.store(true, std::memory_order_release);
    await(sent);
    att.detach();
  });
  await(attached);
  xcall::call_single_data csd(&run_record::record, &r);
  ASSERT_EQ(d.call_function_single_async(0, csd), kOk);
  sent.store(true, std::memory_order_release);
  host.join();
  EXPECT_EQ(r.runs.load(), 1) << "detach dropped a queued call";
  errno = 0;
  EXPECT_EQ(fcntl(fd.load(), F_GETFD), -1) << "the descriptor outlived its attachment";
  EXPECT_EQ(errno, EBADF);
}

TEST_P(FdDeliveryTest, AStallReportSaysTheHostIsBlockedInItsEventLoop) {
  xcall::domain_options o = attached_domain_options(1, engine());
  o.stall_timeout = 100ms;
  std::atomic<int> loop_blocked_reports{0};
  std::string line;  // the first such report, formatted (written before the count)
  o.on_stall = [&](const xcall::stall_report& report) {
    if (!report.unstuck && report.target_activity == xcall::host_activity::loop_blocked) {
      if (loop_blocked_reports.load() == 0) line = xcall::format_stall_report(report);
      loop_blocked_reports.fetch_add(1);
    }
  };
  domain d(o);
  std::atomic<bool> announced{false};
  app_host host(d, 0, kFd, [&](app_host&) {
    // A loop that forgot the doorbell fd: it waits on another descriptor.
    xcall_test::pipe_pair other;
    epoll_set ep(other.fds[0]);
    xcall::loop_wait w;
    announced.store(true, std::memory_order_release);
    (void)ep.wait(600);
  });
  await(announced);
  run_record r;
  run_with_deadline(kDeadline, "a call to a loop that does not watch its doorbell", [&] {
    EXPECT_EQ(d.call_function_single(0, &run_record::record, &r, true), kOk);
  });
  EXPECT_EQ(r.runs.load(), 1);
  ASSERT_GE(loop_blocked_reports.load(), 1);
  EXPECT_NE(line.find("blocked in its event loop"), std::string::npos) << line;
}

TEST_P(FdDeliveryTest, ALoopWaitChangesNothingWhereItCannotAnnounce) {
  domain d(attached_domain_options(2, engine()));
  std::atomic<bool> guard_up{false};
  std::atomic<bool> sent{false};
  std::atomic<bool> guarded_may_block{false};
  std::atomic<bool> nested_may_block{false};
  std::atomic<bool> poll_host_may_block{false};
  std::atomic<bool> poll_host_queued_after{false};
  run_record guarded;
  run_record queued;
  // An fd host inside an irq_guard: no announcement, no write; the call
  // runs at the guard's end.
  app_host fd_host(d, 0, kFd, [&](app_host&) {
    {
      xcall::irq_guard g;
      guard_up.store(true, std::memory_order_release);
      await(sent);
      xcall::loop_wait w;
      guarded_may_block.store(w.may_block());
    }
    xcall::loop_wait outer;
    xcall::loop_wait inner;  // inside another: inert
    nested_may_block.store(inner.may_block());
  });
  // A poll-delivery host: loop_wait is inert; its end runs nothing.
  std::atomic<bool> poll_sent{false};
  app_host poll_host(d, 1, {delivery_mode::poll, false}, [&](app_host&) {
    await(poll_sent);
    {
      xcall::loop_wait w;
      poll_host_may_block.store(w.may_block());
    }
    poll_host_queued_after.store(queued.runs.load() == 0);
    xcall::poll();
  });
  await(guard_up);
  xcall::call_single_data csd(&run_record::record, &guarded);
  ASSERT_EQ(d.call_function_single_async(0, csd), kOk);
  sent.store(true, std::memory_order_release);
  xcall::call_single_data csd1(&run_record::record, &queued);
  ASSERT_EQ(d.call_function_single_async(1, csd1), kOk);
  poll_sent.store(true, std::memory_order_release);
  fd_host.join();
  poll_host.join();
  EXPECT_TRUE(guarded_may_block.load());
  EXPECT_EQ(guarded.runs.load(), 1);
  EXPECT_TRUE(nested_may_block.load());
  EXPECT_EQ(fd_writes(d, 0), 0u);
  EXPECT_TRUE(poll_host_may_block.load());
  EXPECT_TRUE(poll_host_queued_after.load()) << "an inert loop_wait ran calls";
  EXPECT_EQ(queued.runs.load(), 1);
}

TEST_P(FdDeliveryTest, WithProxyAParkedHostsCallsAreRunByTheWaiter) {
  domain d(attached_domain_options(1, engine()));
  xcall_test::pipe_pair pipe;
  std::atomic<bool> parked{false};
  std::atomic<bool> region_may_block{false};
  app_host host(d, 0, {delivery_mode::fd, true}, [&](app_host&) {
    xcall::blocking_region region;
    xcall::loop_wait w;  // parked: inert, the waiter proxies
    region_may_block.store(w.may_block());
    parked.store(true, std::memory_order_release);
    char byte;
    (void)read(pipe.fds[0], &byte, 1);
  });
  await(parked);
  run_record r;
  std::atomic<pid_t> waiter{0};
  run_with_deadline(kDeadline, "a waiting call to a parked fd host", [&] {
    waiter.store(xcall_test::gettid_now());
    ASSERT_EQ(d.call_function_single(0, &run_record::record, &r, true), kOk);
  });
  EXPECT_EQ(r.runs.load(), 1);
  EXPECT_EQ(r.tid.load(), waiter.load()) << "not run by the waiting caller";
  EXPECT_EQ(r.cpu.load(), 0u);
  EXPECT_TRUE(region_may_block.load());
  EXPECT_EQ(fd_writes(d, 0), 0u);
  pipe.release_reader();
  host.join();
}

XCALL_TEST_ON_EVERY_ENGINE(FdDeliveryTest);

TEST(FdDeliveryDeathTest, EndingTheAttachmentInsideALoopWaitAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        domain d(attached_domain_options(1));
        xcall::cpu_attachment att = d.attach(0, kFd);
        xcall::loop_wait w;
        att.detach();
      },
      "CPU 0 ended inside a loop_wait");
}

}  // namespace
