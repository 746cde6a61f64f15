// churn.cpp — mask churners, the hotplug thread and the stutter thread.
//
// Ordering: the mask bits change through live_mask::try_write() and CPUs
// through online_tracker begin/end around each transition, under the
// hotplug lock (their headers give the edges); the flags are relaxed.
#include "churn.hpp"

#include <algorithm>
#include <chrono>

#include "hotplug.hpp"
#include "ops.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {

churn::churn(run_state& run) : run_(run) {}

churn::~churn() { join(); }

void churn::start() {
  for (unsigned i = 0; i < run_.opt.mask_churn; ++i) {
    threads_.emplace_back([this, i] { mask_churner(i); });
  }
  if (run_.opt.onoff_interval_s > 0 && !run_.opt.attached) {
    threads_.emplace_back([this] { hotplug_thread(); });
  }
  if (run_.opt.stutter_s > 0) threads_.emplace_back([this] { stutter_thread(); });
}

void churn::join() {
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool churn::nap(double seconds) const {
  using clock = std::chrono::steady_clock;
  const auto end = clock::now() + std::chrono::duration_cast<clock::duration>(
                                      std::chrono::duration<double>(seconds));
  for (auto now = clock::now(); now < end; now = clock::now()) {
    if (run_.stop_churn.load(std::memory_order_relaxed)) return false;
    std::this_thread::sleep_for(
        std::min<clock::duration>(end - now, std::chrono::milliseconds(10)));
  }
  return !run_.stop_churn.load(std::memory_order_relaxed);
}

void churn::mask_churner(unsigned index) {
  rng r(mix_seed(run_.opt.seed, 1000 + index));
  const auto n_inv = run_.invokers.size();
  const xcall::cpu_t n = run_.nr_cpus;
  std::uint64_t flips = 0;
  for (unsigned i = 0; !run_.stop_churn.load(std::memory_order_relaxed); ++i) {
    live_mask& mask = run_.invokers[r.below(n_inv)]->mask();
    if (r.one_in(32)) {
      // Clear (or set) the whole mask, bit by bit: the "mask emptied under
      // the caller" case of the seed.
      const bool value = r.one_in(4);
      for (xcall::cpu_t c = 0; c < n; ++c) flips += mask.try_write(c, value) ? 1 : 0;
    } else {
      const auto c = static_cast<xcall::cpu_t>(r.below(n));
      flips += mask.try_write(c, !mask.mask().test(c)) ? 1 : 0;
    }
    // No sched_yield here: on this kernel (6.18, EEVDF) a tight yield loop
    // made the scheduler leave woken threads (the hosts) runnable but
    // unscheduled for seconds, and every long owned run failed on it
    // (docs/torture.md, "Starved hosts"). A plain busy thread gets its fair
    // share and no more.
    if (i % 1024 == 1023) {
      add(event::mask_flips, flips);
      flips = 0;
    }
  }
  add(event::mask_flips, flips);
}

void churn::hotplug_thread() {
  activity& slot = new_activity("hotplug");
  rng r(mix_seed(run_.opt.seed, 2000));
  while (nap(run_.opt.onoff_interval_s)) {
    const auto cpu = static_cast<xcall::cpu_t>(r.below(run_.nr_cpus));
    slot.begin("waiting for the hotplug lock", cpu);
    run_.hotplug.write();
    // Under the lock: functions that act (--nesting) change CPUs too.
    hotplug_step(run_, cpu, run_.online.stable_online(cpu), slot);
    run_.hotplug.unwrite();
    slot.end();
  }
}

void churn::stutter_thread() {
  while (nap(run_.opt.stutter_s)) {
    run_.paused.store(true, std::memory_order_relaxed);
    const bool go_on = nap(run_.opt.stutter_s);
    run_.paused.store(false, std::memory_order_relaxed);
    if (!go_on) break;
  }
}

}  // namespace xcall_torture
