// churn.hpp — the threads that change things under the invokers' feet:
//  - mask churners (--mask-churn N): set and clear random bits of the live
//    masks invokers are passing at that moment (the seed's race);
//  - the hotplug thread (--onoff-interval, owned CPUs): cpu_down/cpu_up of a
//    random CPU, never the last online one nor more than half of them;
//  - the stutter thread (--stutter): pauses every invoker periodically, so
//    CPUs go idle (and to sleep) and wake up again.
//
// Thread safety: each runs until run_state::stop_churn; join() waits for all.
#pragma once

#include <thread>
#include <vector>

#include "run_state.hpp"

namespace xcall_torture {

class churn {
 public:
  explicit churn(run_state& run);
  ~churn();
  churn(const churn&) = delete;
  churn& operator=(const churn&) = delete;

  /// Starts the threads the options ask for.
  void start();
  /// Waits for them (after run_state::stop_churn was set).
  void join();

 private:
  void mask_churner(unsigned index);
  void hotplug_thread();
  void stutter_thread();
  /// Sleeps `seconds` unless the run stops first; returns false if it did.
  bool nap(double seconds) const;

  run_state& run_;
  std::vector<std::thread> threads_;
};

}  // namespace xcall_torture
