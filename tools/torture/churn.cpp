// churn.cpp — mask churners, the hotplug thread and the stutter thread.
//
// Ordering: the mask bits change through live_mask::try_write() and CPUs
// through online_tracker begin/end around each transition, under the
// hotplug lock (their headers give the edges); the flags are relaxed.
#include "churn.hpp"

#include <algorithm>
#include <chrono>

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
  const auto end =
      clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  for (auto now = clock::now(); now < end; now = clock::now()) {
    if (run_.stop_churn.load(std::memory_order_relaxed)) return false;
    std::this_thread::sleep_for(std::min<clock::duration>(end - now, std::chrono::milliseconds(10)));
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
    if (i % 4 == 3) std::this_thread::yield();  // leave the (few) host CPUs to the calls
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
  xcall::domain& dom = *run_.dom;
  while (nap(run_.opt.onoff_interval_s)) {
    const auto cpu = static_cast<xcall::cpu_t>(r.below(run_.nr_cpus));
    const bool down = run_.online.stable_online(cpu);
    // Never the last CPU, and at most half of them offline: a random walk
    // would otherwise drift to "almost all offline" and test little else.
    const int keep = std::max(1, static_cast<int>(run_.nr_cpus / 2));
    if (down && run_.online_count.load(std::memory_order_relaxed) <= keep) continue;
    slot.begin(down ? "waiting for the hotplug lock to take down" : "waiting for the hotplug lock to bring up", cpu);
    run_.hotplug.write();
    slot.begin(down ? "cpu_down" : "cpu_up", cpu);
    run_.online.begin(cpu);
    const std::error_code ec = down ? dom.cpu_down(cpu) : dom.cpu_up(cpu);
    run_.online.end(cpu);
    const bool now_online = dom.cpu_online(cpu);
    run_.hotplug.unwrite();
    slot.end();
    add(down ? event::cpu_down : event::cpu_up);
    run_.online_count.fetch_add(down ? -1 : 1, std::memory_order_relaxed);
    if (ec) {
      fail(check::hotplug, std::string(down ? "cpu_down(" : "cpu_up(") + std::to_string(cpu) +
                               ") returned " + ec.message());
    } else if (now_online == down) {
      fail(check::hotplug, "CPU " + std::to_string(cpu) + " is " +
                               (now_online ? "online after cpu_down" : "offline after cpu_up"));
    } else {
      pass(check::hotplug);
    }
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
