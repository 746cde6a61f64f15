// tests/support/test_support.hpp — helpers shared by xcall's unit and stress
// tests: hang detection, start gates, test domains on either engine (and the
// fixture that runs a test once per engine), attached host threads, per-CPU
// run logs and stress-duration tuning.
//
// Nothing here allocates once set up except run_with_deadline (a thread) and
// the host_thread constructor, so no_alloc_test can use the helpers inside its
// counting window.
//
// Environment:
//   XCALL_STRESS_SECONDS   seconds each stress scenario runs (default 2)
//   XCALL_DEADLINE_SCALE   multiplies every hang deadline (default 1, or 3
//                          under ThreadSanitizer and 2 under AddressSanitizer;
//                          kept so a scaled deadline still fires before CTest's
//                          TIMEOUT of 120 s per unit test, 300 s per stress test)
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "xcall/xcall.hpp"

#if defined(__SANITIZE_THREAD__)
#define XCALL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XCALL_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define XCALL_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XCALL_TEST_ASAN 1
#endif
#endif

namespace xcall_test {

using namespace std::chrono_literals;
using xcall::cpu_t;

// ---------------------------------------------------------------------------
// Environment knobs

inline double env_double(const char* name, double fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  double v = std::strtod(s, &end);
  return (end != s && v > 0) ? v : fallback;
}

/// How much slower than a plain build this binary runs: hang deadlines are
/// multiplied by it.
inline double deadline_scale() {
#if defined(XCALL_TEST_TSAN)
  constexpr double kDefault = 3;
#elif defined(XCALL_TEST_ASAN)
  constexpr double kDefault = 2;
#else
  constexpr double kDefault = 1;
#endif
  return env_double("XCALL_DEADLINE_SCALE", kDefault);
}

/// How long one stress scenario runs (XCALL_STRESS_SECONDS, default 2 s). The
/// loops are bounded by time, not by iterations, so a sanitizer build takes
/// the same wall time and simply does fewer rounds.
inline std::chrono::nanoseconds stress_duration() {
  double s = env_double("XCALL_STRESS_SECONDS", 2.0);
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}

/// A deadline for a stress scenario: its duration plus a generous margin
/// (before scaling: 2 s + 40 s, so 126 s under TSan, inside CTest's 300 s).
inline std::chrono::seconds stress_deadline() {
  auto d = std::chrono::duration_cast<std::chrono::seconds>(stress_duration());
  return d + 40s;
}

// ---------------------------------------------------------------------------
// Hang detection

namespace detail {
inline std::mutex& diag_mutex() {
  static std::mutex m;
  return m;
}
inline std::function<std::string()>& diag_fn() {
  static std::function<std::string()> f;
  return f;
}
}  // namespace detail

/// Registers what a hang report prints after the HANG line (the progress of
/// the test's threads, typically). Called from the watchdog thread while the
/// test's threads still run, so it should read atomics only.
inline void set_hang_diagnostic(std::function<std::string()> fn) {
  std::lock_guard<std::mutex> lk(detail::diag_mutex());
  detail::diag_fn() = std::move(fn);
}

class scoped_hang_diagnostic {
 public:
  explicit scoped_hang_diagnostic(std::function<std::string()> fn) {
    set_hang_diagnostic(std::move(fn));
  }
  ~scoped_hang_diagnostic() { set_hang_diagnostic(nullptr); }
  scoped_hang_diagnostic(const scoped_hang_diagnostic&) = delete;
  scoped_hang_diagnostic& operator=(const scoped_hang_diagnostic&) = delete;
};

[[noreturn]] inline void report_hang(const char* what, double seconds) {
  std::fprintf(stderr, "HANG: %s did not finish within %.0f s\n", what, seconds);
  std::unique_lock<std::mutex> lk(detail::diag_mutex(), std::try_to_lock);
  if (lk.owns_lock() && detail::diag_fn()) {
    std::string s = detail::diag_fn()();
    std::fprintf(stderr, "%s\n", s.c_str());
  }
  std::fflush(stderr);
  std::_Exit(1);
}

/// Runs `body` on a new thread (a plain thread: it hosts no CPU) and waits for
/// it. If it has not finished within `limit` (times deadline_scale()), prints
/// "HANG: <what> did not finish within N s" and the registered diagnostic to
/// stderr and ends the process with status 1: a hang fails, it never stalls
/// CI. An exception thrown by body is rethrown here.
template <class F>
void run_with_deadline(std::chrono::seconds limit, const char* what, F&& body) {
  struct state {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
  };
  auto st = std::make_shared<state>();
  std::thread t([st, &body] {
    try {
      body();
    } catch (...) {
      st->error = std::current_exception();
    }
    std::lock_guard<std::mutex> lk(st->m);
    st->done = true;
    st->cv.notify_all();
  });
  const double secs = static_cast<double>(limit.count()) * deadline_scale();
  {
    std::unique_lock<std::mutex> lk(st->m);
    if (!st->cv.wait_for(lk, std::chrono::duration<double>(secs), [&] { return st->done; })) {
      report_hang(what, secs);
    }
  }
  t.join();
  if (st->error) std::rethrow_exception(st->error);
}

/// The default deadline of a unit test.
inline constexpr std::chrono::seconds kUnitDeadline{30};

// ---------------------------------------------------------------------------
// Waiting without burning the two cores

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// One step of a spin-then-yield-then-sleep backoff; `i` counts the steps.
inline void backoff(unsigned& i) noexcept {
  if (i < 32) {
    cpu_relax();
  } else if (i < 256) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(50us);
  }
  ++i;
}

/// Waits until pred() holds or `timeout` passes; returns pred()'s last value.
/// Allocates nothing.
template <class Pred>
bool eventually(Pred&& pred, std::chrono::nanoseconds timeout = 10s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  unsigned i = 0;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    backoff(i);
  }
  return true;
}

/// As eventually(), but the waiting thread polls its own CPU (if it hosts one)
/// while it waits, so calls addressed to it keep running.
template <class Pred>
bool eventually_polling(Pred&& pred, std::chrono::nanoseconds timeout = 10s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  unsigned i = 0;
  while (!pred()) {
    xcall::poll();
    if (std::chrono::steady_clock::now() > end) return pred();
    backoff(i);
  }
  return true;
}

/// A one-shot gate: threads wait() until someone open()s it.
class start_gate {
 public:
  void open() noexcept { open_.store(true, std::memory_order_release); }
  bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }
  void wait() const noexcept {
    unsigned i = 0;
    while (!is_open()) backoff(i);
  }

 private:
  std::atomic<bool> open_{false};
};

/// A reusable barrier for `n` threads (sense reversal). Spins, then yields,
/// then sleeps, so oversubscribed threads still make progress.
class spin_barrier {
 public:
  explicit spin_barrier(unsigned n) noexcept : n_(n) {}
  void arrive_and_wait() noexcept {
    const unsigned gen = gen_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      arrived_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    unsigned i = 0;
    while (gen_.load(std::memory_order_acquire) == gen) backoff(i);
  }

 private:
  const unsigned n_;
  std::atomic<unsigned> arrived_{0};
  std::atomic<unsigned> gen_{0};
};

// ---------------------------------------------------------------------------
// Domains for tests

/// Owned CPUs (the domain starts their threads), adaptive idle with a short
/// spin so a 2-core machine is not burned by idle CPUs.
inline xcall::domain_options owned_options(cpu_t nr_cpus,
                                           xcall::idle_mode idle = xcall::idle_mode::adaptive) {
  xcall::domain_options o;
  o.nr_cpus = nr_cpus;
  o.start_threads = true;
  o.idle = idle;
  o.idle_spin = std::chrono::microseconds(5);
  return o;
}

/// Every CPU starts offline and comes online when a thread attaches to it.
inline xcall::domain_options attached_domain_options(cpu_t nr_cpus) {
  xcall::domain_options o = owned_options(nr_cpus);
  o.start_threads = false;
  return o;
}

// ---------------------------------------------------------------------------
// Engines: every test of the core runs against both (docs/engines.md).
//
//   class FooTest : public xcall_test::engine_test {};
//   TEST_P(FooTest, Bar) { xcall::domain d(owned_options(4, engine())); ... }
//   XCALL_TEST_ON_EVERY_ENGINE(FooTest);   // FooTest.Bar/percpu, FooTest.Bar/classic

/// Both engines, the default first.
inline constexpr xcall::engine kEngines[] = {xcall::engine::percpu, xcall::engine::classic};

/// "percpu" or "classic": test-name suffixes and messages.
inline const char* engine_name(xcall::engine e) noexcept {
  switch (e) {
    case xcall::engine::percpu:
      return "percpu";
    case xcall::engine::classic:
      return "classic";
  }
  return "unknown_engine";
}

/// `o` with its engine set to `e`.
inline xcall::domain_options with_engine(xcall::domain_options o, xcall::engine e) {
  o.engine_kind = e;
  return o;
}

/// owned_options() on engine `e`.
inline xcall::domain_options owned_options(cpu_t nr_cpus, xcall::engine e,
                                           xcall::idle_mode idle = xcall::idle_mode::adaptive) {
  return with_engine(owned_options(nr_cpus, idle), e);
}

/// attached_domain_options() on engine `e`.
inline xcall::domain_options attached_domain_options(cpu_t nr_cpus, xcall::engine e) {
  return with_engine(attached_domain_options(nr_cpus), e);
}

/// Names a test instance by its engine: "percpu", "classic".
struct engine_param_name {
  std::string operator()(const testing::TestParamInfo<xcall::engine>& info) const {
    return engine_name(info.param);
  }
};

/// Fixture of a test that runs once per engine; its domains take engine().
class engine_test : public testing::TestWithParam<xcall::engine> {
 protected:
  xcall::engine engine() const { return GetParam(); }
};

}  // namespace xcall_test

namespace xcall {
/// gtest prints an engine parameter by name ("GetParam() = classic").
inline void PrintTo(engine e, std::ostream* os) { *os << xcall_test::engine_name(e); }
}  // namespace xcall

namespace xcall_test {

/// Instantiates every TEST_P of `suite` (an engine_test) once per engine,
/// named suite.Test/percpu and suite.Test/classic.
#define XCALL_TEST_ON_EVERY_ENGINE(suite)                                        \
  INSTANTIATE_TEST_SUITE_P(, suite, ::testing::ValuesIn(::xcall_test::kEngines), \
                           ::xcall_test::engine_param_name{})

/// A mask of `n` bits with `bits` set.
inline xcall::cpumask make_mask(cpu_t n, std::initializer_list<cpu_t> bits) {
  xcall::cpumask m(n);
  for (cpu_t c : bits) m.set(c);
  return m;
}

inline void noop(void*) noexcept {}

/// A thread that attaches to one CPU of an attach domain and serves it
/// (idle_wait in a loop) until destroyed; it can also run a task as that
/// CPU's host (run()). Construction waits until the CPU is online; an attach
/// failure is rethrown by the constructor. Declare it after its domain.
class host_thread {
 public:
  host_thread(xcall::domain& d, cpu_t cpu) : d_(d), cpu_(cpu) {
    thread_ = std::thread([this] { loop(); });
    unsigned i = 0;
    while (state_.load(std::memory_order_acquire) == kStarting) backoff(i);
    if (state_.load(std::memory_order_acquire) == kFailed) {
      thread_.join();
      std::rethrow_exception(error_);
    }
  }
  ~host_thread() { stop(); }
  host_thread(const host_thread&) = delete;
  host_thread& operator=(const host_thread&) = delete;

  cpu_t cpu() const noexcept { return cpu_; }

  /// Detaches (the CPU drains and goes offline) and ends the thread.
  void stop() {
    if (!thread_.joinable()) return;
    stop_.store(true, std::memory_order_release);
    poke();
    thread_.join();
  }

  /// Runs f() on the host thread, as the host of cpu(), and waits for it.
  /// Allocates nothing. Must not be called from the host thread itself.
  template <class F>
  void run(F&& f) {
    using Fn = std::remove_reference_t<F>;
    task_arg_ = static_cast<void*>(&f);
    task_fn_.store([](void* p) { (*static_cast<Fn*>(p))(); }, std::memory_order_release);
    poke();
    unsigned i = 0;
    while (task_fn_.load(std::memory_order_acquire) != nullptr) backoff(i);
  }

 private:
  static constexpr int kStarting = 0, kRunning = 1, kFailed = 2;

  // Wakes the host out of idle_wait with an empty call. A failure (the CPU is
  // already offline) does not matter: the loop also wakes on its timeout.
  void poke() noexcept { (void)d_.call_function_single(cpu_, &noop, nullptr, false); }

  void loop() {
    xcall::cpu_attachment att;
    try {
      att = d_.attach(cpu_);
    } catch (...) {
      error_ = std::current_exception();
      state_.store(kFailed, std::memory_order_release);
      return;
    }
    state_.store(kRunning, std::memory_order_release);
    while (!stop_.load(std::memory_order_acquire)) {
      if (auto* fn = task_fn_.load(std::memory_order_acquire)) {
        fn(task_arg_);
        task_fn_.store(nullptr, std::memory_order_release);
      }
      (void)xcall::idle_wait(2ms);
    }
  }

  xcall::domain& d_;
  const cpu_t cpu_;
  std::thread thread_;
  std::atomic<int> state_{kStarting};
  std::exception_ptr error_;
  std::atomic<bool> stop_{false};
  std::atomic<void (*)(void*)> task_fn_{nullptr};
  void* task_arg_ = nullptr;
};

// ---------------------------------------------------------------------------
// Recording where a call ran

/// Per-CPU run counts of one call (or of a sequence of calls, between
/// reset()s). `record` is a call_func_t taking the log as info.
struct run_log {
  explicit run_log(cpu_t n) : nr(n), runs(n), irqs_off(n) {}
  /// A test that saw a run may end at once: wait until that run has left
  /// record_here() before the counters go away.
  ~run_log() {
    unsigned i = 0;
    while (inside_.load(std::memory_order_acquire) != 0) backoff(i);
  }
  run_log(const run_log&) = delete;
  run_log& operator=(const run_log&) = delete;

  const cpu_t nr;
  std::vector<std::atomic<int>> runs;      // runs per CPU (this_cpu() in the handler)
  std::vector<std::atomic<int>> irqs_off;  // of those, runs with irqs_disabled()
  std::atomic<int> stray{0};               // runs where this_cpu() was no_cpu or out of range
  std::atomic<int> on_caller{0};           // runs on the thread that made the call
  std::atomic<int> total{0};
  std::thread::id caller;  // written by the caller before the call

  void record_here() noexcept {
    // seq_cst, before any count: whoever sees a count also sees inside_ > 0
    // until the release decrement below, the last touch of this object.
    inside_.fetch_add(1, std::memory_order_seq_cst);
    cpu_t c = xcall::this_cpu();
    if (std::this_thread::get_id() == caller) on_caller.fetch_add(1, std::memory_order_relaxed);
    if (c >= nr) {
      stray.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (xcall::irqs_disabled()) irqs_off[c].fetch_add(1, std::memory_order_relaxed);
      runs[c].fetch_add(1, std::memory_order_relaxed);
    }
    // Release: a thread that sees the total sees the per-CPU counts too.
    total.fetch_add(1, std::memory_order_release);
    inside_.fetch_sub(1, std::memory_order_release);  // pairs with ~run_log()
  }
  static void record(void* self) noexcept { static_cast<run_log*>(self)->record_here(); }

  /// Call only when no call that records here can still run.
  void reset(std::thread::id caller_id = std::this_thread::get_id()) noexcept {
    for (auto& r : runs) r.store(0, std::memory_order_relaxed);
    for (auto& r : irqs_off) r.store(0, std::memory_order_relaxed);
    stray.store(0, std::memory_order_relaxed);
    on_caller.store(0, std::memory_order_relaxed);
    total.store(0, std::memory_order_relaxed);
    caller = caller_id;
  }

  int at(cpu_t c) const noexcept { return runs[c].load(std::memory_order_acquire); }
  int count() const noexcept { return total.load(std::memory_order_acquire); }

  std::vector<int> snapshot() const {
    std::vector<int> v(nr);
    for (cpu_t c = 0; c < nr; ++c) v[c] = runs[c].load(std::memory_order_acquire);
    return v;
  }

 private:
  std::atomic<int> inside_{0};
};

/// Renders per-CPU counts for failure messages: "[1 0 1 0]".
inline std::string to_string(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ' ';
    s += std::to_string(v[i]);
  }
  return s + "]";
}

/// Collects failures seen by many threads (handlers included), to be asserted
/// once at the end: a count and the first few messages. Allocates when a
/// failure is added, so not for no_alloc_test's window.
class failure_log {
 public:
  void add(const std::string& msg) {
    if (count_.fetch_add(1, std::memory_order_relaxed) < kKeep) {
      std::lock_guard<std::mutex> lk(mu_);
      first_.push_back(msg);
    }
  }
  int count() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::string summary() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::string s = std::to_string(count()) + " failure(s)";
    for (const auto& m : first_) s += "\n  " + m;
    return s;
  }

 private:
  static constexpr int kKeep = 10;
  std::atomic<int> count_{0};
  mutable std::mutex mu_;
  std::vector<std::string> first_;
};

/// Named per-thread progress counters, for hang diagnostics: a hang report
/// shows which thread stopped moving and where it was.
class progress_board {
 public:
  explicit progress_board(std::size_t n) : count_(n), where_(n), names_(n) {}
  void name(std::size_t i, std::string n) { names_[i] = std::move(n); }
  void tick(std::size_t i) noexcept { count_[i].fetch_add(1, std::memory_order_relaxed); }
  /// A short static string saying what thread i is doing now.
  void at(std::size_t i, const char* what) noexcept {
    where_[i].store(what, std::memory_order_relaxed);
  }
  std::uint64_t get(std::size_t i) const noexcept {
    return count_[i].load(std::memory_order_relaxed);
  }
  std::string render() const {
    std::string s = "progress:";
    for (std::size_t i = 0; i < count_.size(); ++i) {
      const char* w = where_[i].load(std::memory_order_relaxed);
      s += "\n  " + names_[i] + ": " + std::to_string(get(i)) + " ops, now " + (w ? w : "-");
    }
    return s;
  }

 private:
  std::vector<std::atomic<std::uint64_t>> count_;
  std::vector<std::atomic<const char*>> where_;
  std::vector<std::string> names_;
};

/// A small, allocation-free PRNG (xorshift64*), one per thread.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::uint64_t next() noexcept {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }
  /// Uniform-ish in [0, n).
  std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>((next() >> 32) % n);
  }

 private:
  std::uint64_t s_;
};

/// A time limit for a stress loop.
class stopwatch {
 public:
  explicit stopwatch(std::chrono::nanoseconds d = stress_duration())
      : end_(std::chrono::steady_clock::now() + d) {}
  bool expired() const noexcept { return std::chrono::steady_clock::now() >= end_; }

 private:
  std::chrono::steady_clock::time_point end_;
};

}  // namespace xcall_test
