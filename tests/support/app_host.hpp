// tests/support/app_host.hpp — an application thread that attaches a CPU with
// given attach_options and then runs the test's own code as that CPU's host
// (a busy loop, an irq_guard, a blocking read), for the tests of delivery
// modes and blocking regions. Unlike host_thread it never polls by itself.
// Also: run_record (what a function saw where it ran) and
// expect_relayed_calls (a function on one CPU waiting for another).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <functional>
#include <thread>

#include "test_support.hpp"

namespace xcall_test {

class app_host {
 public:
  /// Starts the thread; it attaches `cpu` with `how`, then runs body(*this).
  /// Construction returns once the CPU is online (or rethrows the attach's
  /// exception). The body should return soon after stop_requested().
  app_host(xcall::domain& d, cpu_t cpu, xcall::attach_options how,
           std::function<void(app_host&)> body)
      : body_(std::move(body)) {
    thread_ = std::thread([this, &d, cpu, how] {
      xcall::cpu_attachment att;
      try {
        att = d.attach(cpu, how);
      } catch (...) {
        error_ = std::current_exception();
        state_.store(kFailed, std::memory_order_release);
        return;
      }
      tid_.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_relaxed);
      state_.store(kRunning, std::memory_order_release);
      body_(*this);
    });
    unsigned i = 0;
    while (state_.load(std::memory_order_acquire) == kStarting) backoff(i);
    if (state_.load(std::memory_order_acquire) == kFailed) {
      thread_.join();
      std::rethrow_exception(error_);
    }
  }
  ~app_host() { join(); }
  app_host(const app_host&) = delete;
  app_host& operator=(const app_host&) = delete;

  void request_stop() noexcept { stop_.store(true, std::memory_order_release); }
  bool stop_requested() const noexcept { return stop_.load(std::memory_order_acquire); }
  /// Asks the body to stop and waits for the thread (it detaches on exit).
  void join() {
    request_stop();
    if (thread_.joinable()) thread_.join();
  }
  /// The host thread's kernel thread id.
  pid_t tid() const noexcept { return tid_.load(std::memory_order_relaxed); }

  /// A computation that never polls: spins until stop_requested() or
  /// until(), whichever first. Returns the number of turns.
  template <class Until>
  std::uint64_t compute(Until&& until) const noexcept {
    std::uint64_t turns = 0;
    while (!stop_requested() && !until()) ++turns;
    return turns;
  }

 private:
  static constexpr int kStarting = 0, kRunning = 1, kFailed = 2;
  std::function<void(app_host&)> body_;
  std::thread thread_;
  std::atomic<int> state_{kStarting};
  std::exception_ptr error_;
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> tid_{0};
};

/// The kernel thread id of the calling thread.
inline pid_t gettid_now() noexcept { return static_cast<pid_t>(syscall(SYS_gettid)); }

/// What a function saw where it ran: pass &record as info, record() as func.
struct run_record {
  std::atomic<int> runs{0};
  std::atomic<cpu_t> cpu{xcall::no_cpu};
  std::atomic<pid_t> tid{0};
  std::atomic<bool> irqs_off{false};

  static void record(void* p) noexcept {
    auto* r = static_cast<run_record*>(p);
    r->cpu.store(xcall::this_cpu(), std::memory_order_relaxed);
    r->tid.store(gettid_now(), std::memory_order_relaxed);
    r->irqs_off.store(xcall::irqs_disabled(), std::memory_order_relaxed);
    r->runs.fetch_add(1, std::memory_order_release);
  }
};

/// `rounds` times: a waiting call to `from` whose function makes a waiting
/// call to `to`; checks that the inner call ran once, on `to`. The function
/// on `from` runs wherever the test arranged (a signal handler, a proxy).
inline void expect_relayed_calls(xcall::domain& d, cpu_t from, cpu_t to, int rounds) {
  struct relay {
    xcall::domain* d;
    cpu_t to;
    run_record inner;
  } r{&d, to, {}};
  for (int i = 0; i < rounds; ++i) {
    r.inner.runs.store(0);
    ASSERT_FALSE(d.call_function_single(
        from,
        [](void* arg) noexcept {
          auto* rl = static_cast<relay*>(arg);
          (void)rl->d->call_function_single(rl->to, &run_record::record, &rl->inner, true);
        },
        &r, true));
    ASSERT_EQ(r.inner.runs.load(), 1);
    EXPECT_EQ(r.inner.cpu.load(), to);
  }
}

}  // namespace xcall_test
