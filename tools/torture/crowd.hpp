// crowd.hpp — --crowd N: more outside callers than the library has outside
// caller slots (src/outside_slots.cpp: max(16, min(1024, 4 x hardware
// threads + nr_cpus)); `--crowd slots+K` asks for K more than that).
//
// Each crowd thread makes one-CPU calls as fast as it can, mostly without
// waiting: call_function_many and on_each_cpu_mask to a one-CPU mask (on the
// classic engine, the one-target fast path), call_function_single,
// call_function_any, and now and then a waiting call_function_single. Each
// is made under the hotplug read lock, so the tool knows whether its target
// runs it: every accepted no-wait call must run by the end (crowd-ran equals
// crowd-calls, the `freed` check), every waiting one before it returns
// (exactly-once), and no thread may stay in one call (the watchdog's `hang`
// check names it): with more callers than slots they queue for slots, and
// every one of them must keep making progress.
//
// Thread safety: one thread per crowd member; join() after the invokers stop.
//
// Memory ordering: none of its own (counters are relaxed statistics; the
// waiting call's flag is ordered by the call's own guarantee 4).
#pragma once

#include <thread>
#include <vector>

#include "run_state.hpp"

namespace xcall_torture {

/// The library's outside caller slot count for `nr_cpus` (a copy of its
/// formula, for the setup line and --crowd slots+K).
unsigned outside_slots(xcall::cpu_t nr_cpus) noexcept;

class crowd {
 public:
  explicit crowd(run_state& run);
  ~crowd();
  crowd(const crowd&) = delete;
  crowd& operator=(const crowd&) = delete;

  void start();
  void join();

 private:
  void member(unsigned index);

  run_state& run_;
  std::vector<std::thread> threads_;
};

}  // namespace xcall_torture
