// crowd.cpp — the crowd threads (crowd.hpp).
//
// Ordering: the hotplug read lock (online.hpp) keeps targets as they are
// during a call; counters are relaxed.
#include "crowd.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <system_error>

#include "checks.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/cpumask.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {
namespace {

using xcall::cpu_t;

/// The crowd's function: counts its runs (async-signal-safe).
void crowd_call(void* info) noexcept {
  if (info == nullptr) {
    add(event::crowd_ran);  // a no-wait call's run
    return;
  }
  // A waiting call's count; relaxed: the call orders it (guarantee 4).
  static_cast<std::atomic<unsigned>*>(info)->fetch_add(1, std::memory_order_relaxed);
}

constexpr const char* kForms[] = {"call_function_many", "on_each_cpu_mask", "call_function_single",
                                  "call_function_any", "call_function_single (wait)"};

}  // namespace

unsigned outside_slots(cpu_t nr_cpus) noexcept {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return std::clamp(4 * hw + nr_cpus, 16u, 1024u);
}

crowd::crowd(run_state& run) : run_(run) {}

crowd::~crowd() { join(); }

void crowd::start() {
  const unsigned n = run_.opt.crowd_threads(outside_slots(run_.nr_cpus));
  for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this, i] { member(i); });
}

void crowd::join() {
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void crowd::member(unsigned index) {
  pthread_setname_np(pthread_self(), ("xt-crowd/" + std::to_string(index)).substr(0, 15).c_str());
  activity& slot = new_activity("crowd " + std::to_string(index));
  rng r(mix_seed(run_.opt.seed, 5000 + index));
  xcall::cpumask one(run_.nr_cpus);
  xcall::domain& dom = *run_.dom;
  while (!run_.stopping()) {
    if (run_.paused.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    const auto target = static_cast<cpu_t>(r.below(run_.nr_cpus));
    // Mostly the one-CPU mask forms; a waiting single call one time in 8.
    const unsigned form = r.one_in(8) ? 4 : static_cast<unsigned>(r.below(4));
    one.reset_all();
    one.set(target);
    run_.hotplug.read();  // an outside thread: it may block
    const bool online = run_.online.stable_online(target);
    std::atomic<unsigned> waited_runs{0};
    slot.begin(kForms[form], target);
    std::error_code ec;
    switch (form) {
      case 0:
        ec = dom.call_function_many(one, crowd_call, nullptr, false);
        break;
      case 1:
        ec = dom.on_each_cpu_mask(one, crowd_call, nullptr, false);
        break;
      case 2:
        ec = dom.call_function_single(target, crowd_call, nullptr, false);
        break;
      case 3:
        ec = dom.call_function_any(one, crowd_call, nullptr, false);
        break;
      default:
        ec = dom.call_function_single(target, crowd_call, &waited_runs, true);
        break;
    }
    slot.end();
    run_.hotplug.unread();
    add(event::crowd_calls);
    // The many/mask forms succeed even for an offline target (nothing runs);
    // the single and any forms say ENXIO then.
    const bool enxio_form = form >= 2;
    const std::string what = std::string("crowd ") + std::to_string(index) + ": " + kForms[form] +
                             " to CPU " + std::to_string(target) + " (seed " +
                             std::to_string(run_.opt.seed) + ")";
    if (enomem_allowed(run_, ec)) continue;
    if (ec && !(enxio_form && ec == std::errc::no_such_device_or_address)) {
      fail(check::error_code, what + ": returned " + ec.message());
      continue;
    }
    pass(check::error_code);
    if (enxio_form && (ec == std::errc::no_such_device_or_address) == online) {
      fail(check::enxio, what + (online ? ": ENXIO for a CPU online all along"
                                        : ": accepted for a CPU offline all along"));
    } else if (enxio_form) {
      pass(check::enxio);
    }
    if (!online) continue;  // nothing runs
    if (form == 4) {
      if (waited_runs.load(std::memory_order_relaxed) == 1) {
        pass(check::exactly_once);
      } else {
        fail(check::exactly_once, what + ": ran " +
                                      std::to_string(waited_runs.load(std::memory_order_relaxed)) +
                                      " times");
      }
    } else {
      add(event::crowd_sent);  // its run is checked at the end (crowd_ran)
    }
  }
}

}  // namespace xcall_torture
