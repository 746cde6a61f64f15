// signal_delivery_test.cpp — delivery_mode::signal (xcall/options.hpp): a
// host that never polls is reached by its doorbell signal; an irq_guard
// defers the call to the guard's end; a host blocked in read() has the call
// run in its handler and its read() restarted; the errors of a taken or
// missing signal; the stall report of a host that blocks the signal.
//
// Every test would hang (and fail by its deadline) without signal delivery:
// the hosts here do not poll.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "app_host.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::attach_options;
using xcall::cpu_t;
using xcall::delivery_mode;
using xcall::domain;
using xcall_test::app_host;
using xcall_test::attached_domain_options;
using xcall_test::kUnitDeadline;
using xcall_test::run_record;
using xcall_test::run_with_deadline;

const attach_options kSignal{delivery_mode::signal, false};

/// A host body that computes without ever polling until asked to stop.
void busy(app_host& h) {
  h.compute([] { return false; });
}

class SignalDeliveryTest : public xcall_test::engine_test {};

TEST_P(SignalDeliveryTest, BusyHostIsReachedWithinBoundedResends) {
  run_with_deadline(kUnitDeadline, "call to a busy signal host", [&] {
    domain d(attached_domain_options(2, engine()));
    app_host host(d, 0, kSignal, busy);
    for (int i = 0; i < 50; ++i) {
      run_record r;
      ASSERT_FALSE(d.call_function_single(0, &run_record::record, &r, true));
      EXPECT_EQ(r.runs.load(), 1);
      EXPECT_EQ(r.cpu.load(), 0u);
      EXPECT_EQ(r.tid.load(), host.tid()) << "the function must run on the host thread";
    }
    const xcall::cpu_stats s = d.stats()[0];
    EXPECT_GE(s.signals_sent, 1u);
    EXPECT_GE(s.signal_runs, 1u) << "the calls must have run in the signal handler";
    // No signal is lost on a healthy machine; a few re-sends may still come
    // from a slow wake-up, never one per call.
    EXPECT_LE(s.signals_resent, 10u);
  });
}

TEST_P(SignalDeliveryTest, ManyCallsReachEveryBusyHost) {
  run_with_deadline(kUnitDeadline, "many-CPU call to busy signal hosts", [&] {
    domain d(attached_domain_options(3, engine()));
    app_host h0(d, 0, kSignal, busy);
    app_host h1(d, 1, kSignal, busy);
    app_host h2(d, 2, kSignal, busy);
    for (int i = 0; i < 20; ++i) {
      std::atomic<int> runs{0};
      ASSERT_FALSE(d.on_each_cpu(
          [](void* p) noexcept { static_cast<std::atomic<int>*>(p)->fetch_add(1); }, &runs, true));
      ASSERT_EQ(runs.load(), 3);
    }
  });
}

TEST_P(SignalDeliveryTest, IrqGuardDefersTheCallToTheGuardsEnd) {
  run_with_deadline(kUnitDeadline, "irq_guard defers a signal call", [&] {
    domain d(attached_domain_options(2, engine()));
    std::atomic<bool> in_guard{false};
    std::atomic<bool> ran_inside_guard{false};
    std::atomic<bool> ran_before_next_statement{false};
    std::atomic<bool> call_sent{false};
    std::atomic<int> runs{0};
    struct ctx_t {
      std::atomic<bool>* in_guard;
      std::atomic<bool>* ran_inside_guard;
      std::atomic<int>* runs;
    } ctx{&in_guard, &ran_inside_guard, &runs};
    app_host host(d, 0, kSignal, [&](app_host& h) {
      {
        xcall::irq_guard guard;
        in_guard.store(true, std::memory_order_relaxed);
        // Compute until the doorbell has been deferred by the guard at
        // least once (the signal came and was refused), then a little more.
        h.compute([&] {
          return call_sent.load(std::memory_order_acquire) && d.stats()[0].signals_deferred >= 1;
        });
        in_guard.store(false, std::memory_order_relaxed);
      }
      // The guard's end ran the call: it is done before this line.
      ran_before_next_statement.store(runs.load(std::memory_order_acquire) == 1);
      busy(h);
    });
    std::thread caller([&] {
      call_sent.store(true, std::memory_order_release);
      EXPECT_FALSE(d.call_function_single(
          0,
          [](void* p) noexcept {
            auto* c = static_cast<ctx_t*>(p);
            c->ran_inside_guard->store(c->in_guard->load(std::memory_order_relaxed));
            c->runs->fetch_add(1, std::memory_order_release);
          },
          &ctx, true));
    });
    caller.join();
    host.join();
    EXPECT_EQ(runs.load(), 1);
    EXPECT_FALSE(ran_inside_guard.load()) << "the call ran inside the irq_guard";
    EXPECT_TRUE(ran_before_next_statement.load()) << "the guard's end did not run the call";
    EXPECT_GE(d.stats()[0].signals_deferred, 1u);
  });
}

TEST_P(SignalDeliveryTest, ReadOnAPipeRestartsAndTheCallRunsInTheHandler) {
#if defined(XCALL_TEST_TSAN)
  // ThreadSanitizer queues an asynchronous signal that arrives in a system
  // call it does not treat as blocking (read is one) and delivers it only
  // when the call returns: the handler cannot run while read() blocks.
  GTEST_SKIP() << "ThreadSanitizer defers signals that arrive inside read()";
#endif
  run_with_deadline(kUnitDeadline, "signal to a host blocked in read()", [&] {
    domain d(attached_domain_options(2, engine()));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::atomic<ssize_t> read_result{-2};
    std::atomic<int> read_errno{0};
    std::atomic<bool> read_returned{false};
    app_host host(d, 0, kSignal, [&](app_host&) {
      char byte = 0;
      const ssize_t n = read(fds[0], &byte, 1);  // blocks until the test writes
      read_errno.store(n < 0 ? errno : 0);
      read_result.store(n);
      read_returned.store(true, std::memory_order_release);
    });
    std::this_thread::sleep_for(20ms);  // let the host enter read()
    run_record r;
    ASSERT_FALSE(d.call_function_single(0, &run_record::record, &r, true));
    EXPECT_EQ(r.runs.load(), 1);
    EXPECT_EQ(r.tid.load(), host.tid()) << "the call must run on the host, in its handler";
    EXPECT_FALSE(read_returned.load(std::memory_order_acquire))
        << "read() returned early (EINTR leaked?)";
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    host.join();
    EXPECT_EQ(read_result.load(), 1) << "read() failed: " << std::strerror(read_errno.load());
    EXPECT_GE(d.stats()[0].signal_runs, 1u);
    close(fds[0]);
    close(fds[1]);
  });
}

TEST_P(SignalDeliveryTest, FunctionsRunInTheHandlerMayCallOtherCpusWithWait) {
  run_with_deadline(kUnitDeadline, "nested call from a signal handler", [&] {
    domain d(attached_domain_options(2, engine()));
    app_host h0(d, 0, kSignal, busy);
    app_host h1(d, 1, kSignal, busy);
    // CPU 0's function runs in its signal handler and waits for CPU 1's.
    xcall_test::expect_relayed_calls(d, 0, 1, 20);
  });
}

TEST_P(SignalDeliveryTest, StallReportNamesAHostThatBlocksTheSignal) {
  run_with_deadline(kUnitDeadline, "stall report of a blocked signal", [&] {
    std::mutex m;
    std::vector<xcall::stall_report> reports;
    xcall::domain_options o = attached_domain_options(2, engine());
    o.stall_timeout = 50ms;
    o.on_stall = [&](const xcall::stall_report& r) {
      std::lock_guard<std::mutex> lock(m);
      reports.push_back(r);
    };
    domain d(o);
    std::atomic<bool> reported{false};
    std::atomic<bool> blocked{false};
    app_host host(d, 0, kSignal, [&](app_host& h) {
      sigset_t doorbell;
      sigemptyset(&doorbell);
      // The domain's signal is the first free one; the attach installed it.
      for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) {
        struct sigaction sa {};
        sigaction(s, nullptr, &sa);
        if ((sa.sa_flags & SA_SIGINFO) != 0) sigaddset(&doorbell, s);
      }
      pthread_sigmask(SIG_BLOCK, &doorbell, nullptr);
      blocked.store(true, std::memory_order_release);
      h.compute([&] { return reported.load(std::memory_order_acquire); });
      // Unblocking delivers the pending signal: the call completes.
      pthread_sigmask(SIG_UNBLOCK, &doorbell, nullptr);
      busy(h);
    });
    std::thread watcher([&] {
      while (!reported.load()) {
        {
          std::lock_guard<std::mutex> lock(m);
          if (!reports.empty()) reported.store(true, std::memory_order_release);
        }
        std::this_thread::sleep_for(5ms);
      }
    });
    unsigned spins = 0;
    while (!blocked.load(std::memory_order_acquire)) xcall_test::backoff(spins);
    run_record r;
    ASSERT_FALSE(d.call_function_single(0, &run_record::record, &r, true));
    watcher.join();
    // The first signal stayed pending while blocked: late, not lost, so the
    // waiter never piled re-sends onto it.
    EXPECT_EQ(d.stats()[0].signals_resent, 0u);
    // Nor did the watchdog's re-rings: one signal for the whole stall.
    EXPECT_EQ(d.stats()[0].signals_sent, 1u);
    EXPECT_EQ(r.runs.load(), 1);
    std::lock_guard<std::mutex> lock(m);
    ASSERT_GE(reports.size(), 2u) << "expected a stall report and its unstuck report";
    const xcall::stall_report& first = reports.front();
    EXPECT_FALSE(first.unstuck);
    EXPECT_EQ(first.target, 0u);
    EXPECT_NE(first.target_doorbell_signal, 0);
    EXPECT_TRUE(first.target_blocks_signal);
    EXPECT_NE(xcall::format_stall_report(first).find("BLOCKS the doorbell signal"),
              std::string::npos)
        << xcall::format_stall_report(first);
    EXPECT_TRUE(reports.back().unstuck);
  });
}

XCALL_TEST_ON_EVERY_ENGINE(SignalDeliveryTest);

// ---- errors -----------------------------------------------------------------

void foreign_handler(int) {}

TEST(SignalDeliveryErrors, ASignalTheApplicationOwnsIsRefusedByName) {
  const int taken = SIGRTMAX - 1;
  struct sigaction sa {};
  sa.sa_handler = &foreign_handler;
  ASSERT_EQ(sigaction(taken, &sa, nullptr), 0);
  xcall::domain_options o = attached_domain_options(2);
  o.doorbell_signal = taken;
  domain d(o);
  try {
    auto att = d.attach(0, kSignal);
    FAIL() << "attach with a taken doorbell signal succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::device_or_resource_busy);
    const std::string what = e.what();
    EXPECT_NE(what.find("already has a handler"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(taken)), std::string::npos) << what;
  }
  // Nothing was claimed: the CPU can still be attached with poll delivery,
  // and the application's handler is still in place.
  { auto att = d.attach(0); }
  struct sigaction now {};
  sigaction(taken, nullptr, &now);
  EXPECT_EQ(now.sa_handler, &foreign_handler);
}

TEST(SignalDeliveryErrors, AnIgnoredSignalIsTakenToo) {
  const int ignored = SIGRTMAX - 2;
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(ignored, &sa, nullptr), 0);
  xcall::domain_options o = attached_domain_options(2);
  o.doorbell_signal = ignored;
  domain d(o);
  EXPECT_THROW({ auto att = d.attach(1, kSignal); }, std::system_error);
}

TEST(SignalDeliveryErrors, ANonRealTimeSignalIsAnInvalidOption) {
  xcall::domain_options o = attached_domain_options(2);
  o.doorbell_signal = SIGUSR1;
  try {
    domain d(o);
    FAIL() << "SIGUSR1 accepted as doorbell_signal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("doorbell_signal"), std::string::npos) << e.what();
  }
}

TEST(SignalDeliveryErrors, NoFreeRealTimeSignalIsEAGAIN) {
  // In a child: taking every real-time signal would disturb the other tests.
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_handler = &foreign_handler;
        for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) sigaction(s, &sa, nullptr);
        domain d(attached_domain_options(2));
        try {
          auto att = d.attach(0, kSignal);
        } catch (const std::system_error& e) {
          const bool named =
              std::string(e.what()).find("no free real-time signal") != std::string::npos;
          std::_Exit(e.code() == std::errc::resource_unavailable_try_again && named ? 0 : 2);
        }
        std::_Exit(3);
      },
      testing::ExitedWithCode(0), "");
}

TEST(SignalDeliveryErrors, AnInvalidDeliveryModeIsEINVAL) {
  domain d(attached_domain_options(2));
  try {
    auto att = d.attach(0, attach_options{static_cast<delivery_mode>(7), false});
    FAIL() << "attach with delivery_mode 7 succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("delivery"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(d.cpu_online(0));
}

TEST(SignalDeliveryErrors, ALateSignalAfterDetachIsHarmless) {
  domain d(attached_domain_options(2));
  pid_t tid = 0;
  int signo = 0;
  {
    auto att = d.attach(0, kSignal);
    tid = xcall_test::gettid_now();
    for (int s = SIGRTMIN; s <= SIGRTMAX && signo == 0; ++s) {
      struct sigaction sa {};
      sigaction(s, nullptr, &sa);
      if ((sa.sa_flags & SA_SIGINFO) != 0) signo = s;
    }
  }
  ASSERT_NE(signo, 0) << "the doorbell handler is not installed";
  // The handler stays installed and ignores a thread that hosts nothing:
  // the default action (terminate) would end this test.
  ASSERT_EQ(syscall(SYS_tgkill, getpid(), tid, signo), 0);
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(xcall::this_cpu(), xcall::no_cpu);
}

}  // namespace
