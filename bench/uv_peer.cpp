// uv_peer.cpp — libuv's way to reach a thread blocked in its event loop:
// uv_async_send() to a uv_async_t of that loop. The peer of xcall's fd
// delivery (attached_cases.cpp), measured the same way:
//
//  - the round trip (peer.libuv.async_roundtrip): the loop thread, pinned to
//    target_core(), blocks in uv_run (epoll_wait); the caller, on
//    caller_core(), sends, and the async callback answers it. The answer is
//    the fairest one for the comparison with xcall: the caller waits exactly
//    as xcall's waiting caller does (it spins for the domain's idle_spin on a
//    word the callback sets, then sleeps on a futex the callback wakes only
//    if the caller is asleep), so the two rows differ only in the doorbell
//    and in what runs on the loop thread. (A second uv_async_t on a loop of
//    the caller's would make the caller block in epoll_wait too: that is the
//    eventfd ping-pong floor, both sides blocking.) The same gap before each
//    send lets the loop get back into epoll_wait.
//  - the sender's system calls for bursts of messages (burst_row
//    peer.libuv.burst_blocked, peer.libuv.burst_running): the usual pattern,
//    a message queued (here: a counter) and uv_async_send() after each, to a
//    loop blocked in epoll_wait (a prepare handle says "about to block") and
//    to a loop busy in a callback of its own. libuv coalesces sends while the
//    handle is pending, so a burst costs one eventfd write either way: it
//    cannot know whether the loop thread is blocked. The writes are the
//    kernel's count for the sending thread (sys.hpp); uv_async_send makes no
//    other write.
//
// Built with libuv only when CMake found it with pkg-config
// (XCALL_BENCH_HAVE_LIBUV); otherwise the rows say why not.
//
// Ordering: the callback's answer is an acq_rel exchange the caller's
// acquire loads pair with (the futex adds none); the message counters are
// release stores read with acquire loads; the loop thread's start-up state,
// `quit` and the busy callback's `go` are release stores paired with acquire
// loads. uv_async_send() itself orders the send before the callback.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <xcall_test_support/futex.hpp>

#include "affinity.hpp"
#include "clock.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"
#include "sys.hpp"

#ifdef XCALL_BENCH_HAVE_LIBUV
#include <uv.h>
#endif

namespace xcall::bench {
namespace {

constexpr const char* kRoundTripId = "peer.libuv.async_roundtrip";
constexpr const char* kBlockedId = "peer.libuv.burst_blocked";
constexpr const char* kRunningId = "peer.libuv.burst_running";
constexpr const char* kBlockedLabel = "libuv uv_async_send → loop blocked in epoll_wait (uv_run)";
constexpr const char* kRunningLabel =
    "libuv uv_async_send → loop running its own code (in a callback)";

std::string round_trip_label(double spin_ns) {
  return fmt::format(
      "libuv uv_async_send → loop blocked in epoll_wait, callback answers; caller spins ≤ {}, "
      "then sleeps",
      fmt_ns(spin_ns));
}

burst_row burst_template(const char* id, const char* label, bool blocked, unsigned per_burst) {
  burst_row row;
  row.id = id;
  row.label = label;
  row.host_blocked = blocked;
  row.calls_per_burst = per_burst;
  return row;
}

}  // namespace

#ifndef XCALL_BENCH_HAVE_LIBUV

namespace {
std::string why_not() {
#ifdef XCALL_BENCH_LIBUV_DISABLED
  return "not built: XCALL_BENCH_LIBUV=OFF";
#else
  return "not built: pkg-config found no libuv (Debian: libuv1-dev)";
#endif
}
}  // namespace

measurement libuv_async_roundtrip(const config&, double caller_spin_ns, double) {
  progress("attached", "libuv: " + why_not());
  return unavailable(kRoundTripId, round_trip_label(caller_spin_ns), figure_kind::latency,
                     why_not());
}

std::vector<burst_row> libuv_bursts(unsigned, unsigned per_burst, double) {
  std::vector<burst_row> rows = {burst_template(kBlockedId, kBlockedLabel, true, per_burst),
                                 burst_template(kRunningId, kRunningLabel, false, per_burst)};
  for (burst_row& row : rows) {
    row.available = false;
    row.note = why_not();
  }
  return rows;
}

#else

namespace {

using xcall::test_support::futex_wait;
using xcall::test_support::futex_wake;

/// What the async callback does.
enum class uv_mode {
  answer,          ///< answers the round trip's caller
  take,            ///< takes the queued messages
  take_then_work,  ///< takes them, then runs "its own code" until `go` moves
};

/// A loop thread pinned to target_core(): uv_run() over one uv_async_t (and,
/// in take mode, a uv_prepare_t that counts the loop's "about to block").
class uv_host {
 public:
  explicit uv_host(uv_mode mode) : mode_(mode) {
    thread_ = std::thread([this] { run(); });
    // acquire: pairs with the loop thread's release stores of state_.
    while (state_.load(std::memory_order_acquire) == kStarting) std::this_thread::yield();
  }
  ~uv_host() { stop(); }
  uv_host(const uv_host&) = delete;
  uv_host& operator=(const uv_host&) = delete;

  bool ok() const noexcept { return state_.load(std::memory_order_acquire) == kRunning; }
  const std::string& error() const noexcept { return error_; }

  void send() noexcept { (void)uv_async_send(&async_); }

  /// The round trip's caller: waits for the answer as xcall's waiting caller
  /// does — spins for `spin_ns`, then sleeps on the futex. Resets it after.
  void await_answer(double spin_ns) noexcept {
    const std::uint64_t t0 = now_ticks();
    bool answered = false;
    for (unsigned i = 0;; ++i) {
      // acquire: pairs with the callback's exchange.
      if (answer_.load(std::memory_order_acquire) == kAnswered) {
        answered = true;
        break;
      }
      if ((i & 63) == 63 && ticks_to_ns(now_ticks() - t0) >= spin_ns) break;
      cpu_relax();
    }
    if (!answered) {
      std::uint32_t expected = kNone;
      if (answer_.compare_exchange_strong(expected, kAsleep, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
        ++sleeps_;
        while (answer_.load(std::memory_order_acquire) == kAsleep) futex_wait(&answer_, kAsleep);
      }
    }
    // relaxed: the callback writes it again only after the next send.
    answer_.store(kNone, std::memory_order_relaxed);
  }
  std::uint64_t sleeps() const noexcept { return sleeps_; }

  /// A message: counted, then the send.
  void post() noexcept {
    // release: the callback's acquire load of queued_ takes it.
    queued_.store(queued_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    send();
  }
  std::uint64_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
  std::uint64_t taken() const noexcept { return taken_.load(std::memory_order_acquire); }
  std::uint64_t callbacks() const noexcept { return callbacks_.load(std::memory_order_acquire); }
  /// take mode: prepare callbacks (the loop about to block in epoll_wait).
  std::uint64_t prepared() const noexcept { return prepared_.load(std::memory_order_acquire); }
  /// take_then_work: callbacks that took the queue and began their own code.
  std::uint64_t working() const noexcept { return working_.load(std::memory_order_acquire); }
  /// take_then_work: ends the callback's own code (it returns to the loop).
  void release_work(std::uint64_t go) noexcept { go_.store(go, std::memory_order_release); }

  void stop() {
    if (!thread_.joinable()) return;
    // release: pairs with the callback's acquire loads.
    quit_.store(true, std::memory_order_release);
    if (ok()) send();
    thread_.join();
  }

 private:
  enum : unsigned { kStarting, kRunning, kFailed };
  enum : std::uint32_t { kNone, kAnswered, kAsleep };

  void run() {
    pin_self(target_core());
    int rc = uv_loop_init(&loop_);
    if (rc != 0) {
      fail("uv_loop_init", rc);
      return;
    }
    async_.data = this;
    prepare_.data = this;
    rc = uv_async_init(&loop_, &async_, &on_async);
    if (rc == 0 && mode_ == uv_mode::take) {
      rc = uv_prepare_init(&loop_, &prepare_);
      if (rc == 0) {
        with_prepare_ = true;
        rc = uv_prepare_start(&prepare_, &on_prepare);
      }
    }
    if (rc != 0) {
      close_handles();
      (void)uv_run(&loop_, UV_RUN_DEFAULT);  // the closes
      (void)uv_loop_close(&loop_);
      fail("uv_async_init/uv_prepare_start", rc);
      return;
    }
    // release: pairs with the constructor's acquire load.
    state_.store(kRunning, std::memory_order_release);
    (void)uv_run(&loop_, UV_RUN_DEFAULT);  // until stop() closes the handles
    (void)uv_loop_close(&loop_);
  }

  void fail(const char* what, int rc) {
    error_ = std::string(what) + ": " + uv_strerror(rc);
    // release: publishes error_; pairs with the acquire loads.
    state_.store(kFailed, std::memory_order_release);
  }

  void close_handles() {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    }
    if (with_prepare_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&prepare_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
    }
  }

  static void on_prepare(uv_prepare_t* h) {
    auto* self = static_cast<uv_host*>(h->data);
    // Single writer: a load and a release store.
    self->prepared_.store(self->prepared_.load(std::memory_order_relaxed) + 1,
                          std::memory_order_release);
  }

  static void on_async(uv_async_t* h) {
    auto* self = static_cast<uv_host*>(h->data);
    // acquire: pairs with stop()'s release store.
    if (self->quit_.load(std::memory_order_acquire)) {
      self->close_handles();
      return;
    }
    self->callbacks_.store(self->callbacks_.load(std::memory_order_relaxed) + 1,
                           std::memory_order_release);
    if (self->mode_ == uv_mode::answer) {
      // acq_rel: publishes the answer; pairs with the caller's acquire loads.
      if (self->answer_.exchange(kAnswered, std::memory_order_acq_rel) == kAsleep) {
        futex_wake(&self->answer_);
      }
      return;
    }
    // acquire: pairs with post()'s release stores.
    self->taken_.store(self->queued_.load(std::memory_order_acquire), std::memory_order_release);
    if (self->mode_ != uv_mode::take_then_work) return;
    self->working_.store(self->working_.load(std::memory_order_relaxed) + 1,
                         std::memory_order_release);
    // The application's own code, until the next burst is in.
    const std::uint64_t seen = self->go_seen_;
    while (self->go_.load(std::memory_order_acquire) == seen &&
           !self->quit_.load(std::memory_order_acquire)) {
      cpu_relax();
    }
    self->go_seen_ = self->go_.load(std::memory_order_acquire);
  }

  const uv_mode mode_;
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_prepare_t prepare_{};
  bool with_prepare_ = false;
  std::atomic<unsigned> state_{kStarting};
  std::atomic<bool> quit_{false};
  std::string error_;
  std::thread thread_;

  alignas(64) std::atomic<std::uint32_t> answer_{kNone};
  std::uint64_t sleeps_ = 0;  ///< the caller's
  alignas(64) std::atomic<std::uint64_t> queued_{0};
  alignas(64) std::atomic<std::uint64_t> taken_{0};
  std::atomic<std::uint64_t> callbacks_{0};
  std::atomic<std::uint64_t> prepared_{0};
  std::atomic<std::uint64_t> working_{0};
  std::uint64_t go_seen_ = 0;  ///< the loop thread's
  alignas(64) std::atomic<std::uint64_t> go_{0};
};

template <class Ready>
void await(Ready&& ready) {
  spin_then_yield(std::forward<Ready>(ready));
}

}  // namespace

measurement libuv_async_roundtrip(const config& cfg, double caller_spin_ns, double gap_ns) {
  const std::string label = round_trip_label(caller_spin_ns);
  uv_host host(uv_mode::answer);
  if (!host.ok()) {
    progress("attached", "libuv: " + host.error());
    return unavailable(kRoundTripId, label, figure_kind::latency, host.error());
  }
  pin_self(caller_core());
  spin_for_ns(1e6);  // the loop thread into epoll_wait
  const series_options opt = series(cfg, gap_ns);
  const std::int64_t w0 = thread_write_syscalls();
  std::vector<double> samples = sample_latency(opt, [&] {
    host.send();
    host.await_answer(caller_spin_ns);
  });
  const std::int64_t w1 = thread_write_syscalls();
  const std::size_t calls = opt.warmup + samples.size();
  host.stop();
  const auto per = [calls](double n) { return calls ? n / static_cast<double>(calls) : 0.0; };
  std::string note = fmt::format(
      "libuv {}: a uv_async_t on a loop thread blocked in uv_run (epoll_wait); the callback "
      "answers through a word the caller spins on for {}, then sleeps on (futex, woken only if "
      "asleep), as xcall's waiting caller does; a {} gap before each send; per send {:.2f} "
      "callbacks, {:.2f} caller sleeps",
      uv_version_string(), fmt_ns(caller_spin_ns), fmt_ns(gap_ns),
      per(static_cast<double>(host.callbacks())), per(static_cast<double>(host.sleeps())));
  if (w0 >= 0 && w1 >= w0) {
    note += fmt::format(", {:.2f} write(2) by the caller (the kernel's count)",
                        per(static_cast<double>(w1 - w0)));
  }
  return latency_figure(kRoundTripId, label, std::move(samples), note);
}

std::vector<burst_row> libuv_bursts(unsigned bursts, unsigned per_burst, double settle_ns) {
  std::vector<burst_row> rows;
  for (const bool blocked : {true, false}) {
    burst_row row = blocked ? burst_template(kBlockedId, kBlockedLabel, true, per_burst)
                            : burst_template(kRunningId, kRunningLabel, false, per_burst);
    uv_host host(blocked ? uv_mode::take : uv_mode::take_then_work);
    if (!host.ok()) {
      row.available = false;
      row.note = host.error();
      rows.push_back(std::move(row));
      continue;
    }
    pin_self(caller_core());
    if (blocked) {
      await([&] { return host.prepared() > 0; });
    } else {
      host.send();  // the first callback: takes nothing, starts its own code
    }
    std::uint64_t announced = host.prepared();
    std::int64_t total = 0;
    bool counted = true;
    for (unsigned b = 0; b < bursts; ++b) {
      if (blocked) {
        // The loop prepared to block again after it took the last burst.
        if (b > 0) await([&] { return host.prepared() > announced; });
        announced = host.prepared();
        spin_for_ns(settle_ns);
      } else {
        await([&] { return host.working() > b; });  // in its own code
      }
      const std::int64_t w0 = thread_write_syscalls();
      const std::uint64_t calls0 = host.callbacks();
      for (unsigned i = 0; i < per_burst; ++i) host.post();
      // Callbacks that ran while the burst was being sent (the loop took
      // part of it): each may cost one more write.
      const std::uint64_t rewaits = host.callbacks() - calls0;
      const std::int64_t w1 = thread_write_syscalls();
      if (!blocked) host.release_work(b + 1);
      const std::uint64_t target = host.queued();
      await([&] { return host.taken() >= target; });
      if (w0 < 0 || w1 < w0) {
        counted = false;
      } else {
        const auto writes = static_cast<std::uint64_t>(w1 - w0);
        total += w1 - w0;
        if (rewaits == 0) {
          row.max_writes_in_a_burst = std::max(row.max_writes_in_a_burst, writes);
        } else {
          ++row.split_bursts;
        }
        const std::uint64_t allowed = blocked ? 1 + rewaits : 0;
        if (writes > allowed) row.excess_writes += writes - allowed;
      }
      ++row.bursts;
    }
    const std::uint64_t callbacks = host.callbacks();
    host.stop();
    if (counted) {
      row.doorbell_writes = total;  // uv_async_send's only system call is its eventfd write
      row.sender_writes = total;
    }
    row.note = fmt::format(
        "libuv {}: {} bursts of {} messages (a counter, then uv_async_send) from one thread to a "
        "loop {}; {:.2f} callbacks per burst; doorbell writes are the sender's write(2)s, the "
        "kernel's count (uv_async_send makes no other system call)",
        uv_version_string(), row.bursts, per_burst,
        blocked ? "blocked in epoll_wait (a prepare handle said it was about to block, then "
                  "the same settle time as xcall's)"
                : "whose callback runs its own code (spins) until the burst is in",
        row.bursts ? static_cast<double>(callbacks) / row.bursts : 0.0);
    rows.push_back(std::move(row));
  }
  return rows;
}

#endif  // XCALL_BENCH_HAVE_LIBUV

}  // namespace xcall::bench
