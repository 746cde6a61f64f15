// run_state.hpp — what every part of a torture run shares: the options, the
// domain under test, the online tracker and hotplug lock, the stop and pause
// flags, and the invokers (whose live masks the churners flip).
//
// Thread safety: built by main() before any thread starts; afterwards only
// the atomics change. `dom` and `invokers` are fixed once threads run.
//
// Memory ordering: the flags are relaxed: each is a request ("stop", "pause")
// polled in a loop; whatever must be seen after a stop is ordered by joining
// the threads.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "host_marks.hpp"
#include "online.hpp"
#include "options.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {

class invoker;
class descriptor_pool;

struct run_state {
  run_state(const torture_options& options, xcall::cpu_t nr_cpus);
  ~run_state();

  const torture_options& opt;
  const xcall::cpu_t nr_cpus;
  xcall::domain* dom = nullptr;
  online_tracker online;
  hotplug_lock hotplug;
  host_marks marks;  ///< --attached: what the hosts publish for the handler's checks
  std::chrono::steady_clock::time_point start;
  /// --fault fail_alloc: ENOMEM (and bad_alloc from attach) is a legal outcome.
  const bool enomem_ok;
  /// --nesting: async descriptors for functions' async operations.
  std::unique_ptr<descriptor_pool> pool;

  std::atomic<bool> stop_invokers{false};  ///< invokers (and hosts' own calls) stop
  std::atomic<bool> stop_churn{false};     ///< churners, hotplug, stutter stop
  std::atomic<bool> stop_hosts{false};     ///< attached hosts detach and leave
  std::atomic<bool> paused{false};         ///< stutter: invokers idle
  /// CPUs online in the tool's view: only a guide for "never the last one"
  /// (relaxed; hosts take it down with a CAS so two cannot both pass).
  std::atomic<int> online_count{0};

  /// Every invoker: the outside ones first, then one per attached host.
  std::vector<std::unique_ptr<invoker>> invokers;

  bool stopping() const noexcept { return stop_invokers.load(std::memory_order_relaxed); }
  double elapsed_s() const noexcept;
};

/// splitmix64: seeds for each thread from the run's seed and a stream id.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) noexcept;

/// How long a tool-side wait (RPC flag, descriptor in flight, the other
/// targets of a rendezvous) may take before it is reported; the library's
/// own waits have the stall watchdog.
std::chrono::nanoseconds tool_wait_limit(const run_state& run);

/// A small, fast generator (xorshift64*), one per thread.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept : s_(seed == 0 ? 0x9e3779b97f4a7c15ull : seed) {}
  std::uint64_t next() noexcept {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545f4914f6cdd1dull;
  }
  /// Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
  bool one_in(std::uint64_t n) noexcept { return below(n) == 0; }
  bool coin() noexcept { return (next() >> 33) & 1; }

 private:
  std::uint64_t s_;
};

}  // namespace xcall_torture
