// watchdog.hpp — the tool's own hang detector. The library's stall watchdog
// reports a stuck wait; this one makes sure the *tool* ends: if the run is
// not over by its duration plus a grace period (sooner once failures were
// seen and the run is stopping), it prints what every thread is doing, ends
// with "End of test: FAILURE" and exits 1 without waiting for anyone.
//
// Threads describe themselves on an activity board: each has a slot saying
// what it is doing (an operation, a hotplug step, a join) and since when; a
// function's nested steps (--nesting) get a slot per thread and nesting
// frame, which also names the top-level operation the chain started from.
// A slot busy with one thing for longer than --hang-timeout fails the `hang`
// check at once (naming it), so a hang ends the run soon after its duration
// instead of a minute later.
//
// Thread safety: a slot is written by its owner (or, for an invoker, by the
// CPU running its trampoline while the invoker waits) and read by the
// watchdog; the board's registry is a mutex.
//
// Memory ordering: slot fields are relaxed atomics: the report is a
// best-effort picture of a stuck process, not a synchronization.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "xcall/types.hpp"

namespace xcall_torture {

struct run_state;

class activity {
 public:
  explicit activity(std::string name) : name_(std::move(name)) {}
  /// `what` must be a string literal (or otherwise outlive the run).
  void begin(const char* what, xcall::cpu_t cpu = xcall::no_cpu) noexcept;
  void end() noexcept;
  /// Nested steps: the top-level operation (#op of invoker) and the depth;
  /// printed after what the slot does. depth 0 clears it.
  void set_origin(unsigned invoker, std::uint64_t op, unsigned depth) noexcept;
  const std::string& name() const noexcept { return name_; }
  /// "many-wait (CPU 3) for 12.5 s", or empty when idle.
  std::string describe(std::chrono::steady_clock::time_point now) const;
  /// The watchdog's hang check: if busy with one thing for more than
  /// `limit_ns` and not reported yet, describes it (else empty).
  std::string take_hang(std::int64_t now_ns, std::int64_t limit_ns);

 private:
  const std::string name_;
  std::atomic<const char*> what_{nullptr};
  std::atomic<xcall::cpu_t> cpu_{xcall::no_cpu};
  std::atomic<std::int64_t> since_ns_{0};
  std::atomic<unsigned> origin_invoker_{0};
  std::atomic<std::uint64_t> origin_op_{0};
  std::atomic<unsigned> origin_depth_{0};
  std::int64_t hang_reported_ = 0;  ///< the watchdog's: the `since` it reported
};

/// A slot on the board, kept until exit.
activity& new_activity(std::string name);
/// One line per busy slot.
std::string describe_activities();
/// The hang check over every slot: one line per newly hung slot.
std::vector<std::string> find_hangs(std::chrono::nanoseconds limit);

class watchdog {
 public:
  /// `on_fire` prints the end-of-test report; it runs on the watchdog thread
  /// just before the process exits with code 1.
  watchdog(run_state& run, std::function<void(const std::string& why)> on_fire);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// The run is stopping: from now on, if a failure is already known, give
  /// it only a short grace.
  void stopping() noexcept;

 private:
  void main();

  run_state& run_;
  std::function<void(const std::string&)> on_fire_;
  std::atomic<bool> done_{false};
  std::atomic<std::int64_t> stop_ns_{0};
  std::thread thread_;
};

}  // namespace xcall_torture
