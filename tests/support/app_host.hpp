// tests/support/app_host.hpp — an application thread that attaches a CPU with
// given attach_options and then runs the test's own code as that CPU's host
// (a busy loop, an irq_guard, a blocking read), for the tests of delivery
// modes and blocking regions. Unlike host_thread it never polls by itself.
// Also: run_record (what a function saw where it ran),
// expect_relayed_calls (a function on one CPU waiting for another) and
// parked_cpu0 (a host parked in read() inside a blocking_region).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

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
      doorbell_fd_.store(att.doorbell_fd(), std::memory_order_relaxed);
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
  /// The attachment's doorbell_fd() (delivery_mode::fd), else -1.
  int doorbell_fd() const noexcept { return doorbell_fd_.load(std::memory_order_relaxed); }

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
  std::atomic<int> doorbell_fd_{-1};
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

// ---------------------------------------------------------------------------
// A host parked in a blocking_region (blocked in read() on a pipe)

/// A pipe whose read end a parked host blocks on.
struct pipe_pair {
  int fds[2] = {-1, -1};
  pipe_pair() {
    if (pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  }
  ~pipe_pair() {
    close(fds[0]);
    close(fds[1]);
  }
  void release_reader() const { EXPECT_EQ(write(fds[1], "x", 1), 1); }
};

/// A host that parks in read() on `p` inside a blocking_region, and records
/// what it saw there.
struct parked_reader {
  const pipe_pair& p;
  std::atomic<bool> parked{false};
  std::atomic<bool> left_region{false};
  std::atomic<cpu_t> cpu_inside{0};
  std::atomic<ssize_t> read_result{-2};

  void operator()(app_host&) {
    {
      xcall::blocking_region region;
      cpu_inside.store(xcall::this_cpu());
      parked.store(true, std::memory_order_release);
      char byte;
      read_result.store(read(p.fds[0], &byte, 1));
    }
    left_region.store(true, std::memory_order_release);
  }
  void wait_parked() const {
    unsigned i = 0;
    while (!parked.load(std::memory_order_acquire)) xcall_test::backoff(i);
  }
};

/// CPU `cpu` of `d`, hosted by a thread parked in read() inside a
/// blocking_region (attached with `how`) until release().
struct parked_cpu {
  pipe_pair pipe;
  parked_reader reader{pipe};
  app_host host;
  parked_cpu(xcall::domain& d, cpu_t cpu, xcall::attach_options how)
      : host(d, cpu, how, std::ref(reader)) {
    reader.wait_parked();
  }
  /// Lets read() return and waits for the host to leave (and detach).
  void release() {
    pipe.release_reader();
    host.join();
  }
};

/// CPU 0 of `d`, parked as parked_cpu says.
struct parked_cpu0 : parked_cpu {
  parked_cpu0(xcall::domain& d, xcall::attach_options how) : parked_cpu(d, 0, how) {}
};

}  // namespace xcall_test
