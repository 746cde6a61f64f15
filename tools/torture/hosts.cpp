// hosts.cpp — the attached hosts' loop, attach and detach.
//
// Ordering: attach/detach are transitions: online_tracker begin/end around
// them, under the hotplug lock taken for writing (by a host: while polling,
// since a reader's call may be waiting for this very CPU). ready_ is a
// release/acquire count: start() returns after every attach happened.
#include "hosts.hpp"

#include <pthread.h>

#include <chrono>
#include <system_error>

#include "ops.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/cpu.hpp"

namespace xcall_torture {
namespace {

constexpr unsigned kCallOneIn = 8;   // loop turns per call of the host's own
constexpr unsigned kSleepOneIn = 8;  // loop turns per idle_wait (else poll)

/// "Application work" between safe points.
void work(rng& r) {
  volatile std::uint64_t x = r.next();
  for (unsigned i = 0; i < 200; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
}

}  // namespace

attached_hosts::attached_hosts(run_state& run) : run_(run) {}

attached_hosts::~attached_hosts() { join(); }

void attached_hosts::start(const std::vector<invoker*>& invokers) {
  for (xcall::cpu_t c = 0; c < run_.nr_cpus; ++c) {
    threads_.emplace_back([this, c, inv = invokers[c]] { host_main(c, *inv); });
  }
  // acquire: pairs with the release in host_main(): every CPU is attached.
  while (ready_.load(std::memory_order_acquire) < run_.nr_cpus) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void attached_hosts::join() {
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool attached_hosts::attach(xcall::cpu_t cpu, xcall::cpu_attachment& att) {
  run_.hotplug.write();  // not a host right now: may block
  run_.online.begin(cpu);
  bool ok = true;
  try {
    att = run_.dom->attach(cpu);
  } catch (const std::system_error& e) {
    ok = false;
    fail(check::hotplug, "attach(" + std::to_string(cpu) + ") threw: " + e.what());
  }
  run_.online.end(cpu);
  const bool online = run_.dom->cpu_online(cpu);
  run_.hotplug.unwrite();
  if (ok) {
    add(event::attach);
    run_.online_count.fetch_add(1, std::memory_order_relaxed);
    if (online && xcall::this_cpu() == cpu) {
      pass(check::hotplug);
    } else {
      fail(check::hotplug, "CPU " + std::to_string(cpu) + " is not online (or not ours) after attach");
    }
  }
  return ok;
}

void attached_hosts::detach(xcall::cpu_t cpu, xcall::cpu_attachment& att) {
  run_.hotplug.write_polling();  // still a host: keep running our calls
  run_.online.begin(cpu);
  att.detach();
  run_.online.end(cpu);
  const bool online = run_.dom->cpu_online(cpu);
  run_.hotplug.unwrite();
  add(event::detach);
  if (!online && xcall::this_cpu() == xcall::no_cpu) {
    pass(check::hotplug);
  } else {
    fail(check::hotplug, "CPU " + std::to_string(cpu) + " is still online after detach");
  }
}

void attached_hosts::host_main(xcall::cpu_t cpu, invoker& inv) {
  const std::string name = "xt-host/" + std::to_string(cpu);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  activity& slot = new_activity("host of CPU " + std::to_string(cpu));
  rng r(mix_seed(run_.opt.seed, 3000 + cpu));
  xcall::cpu_attachment att;
  slot.begin("attach", cpu);
  const bool attached = attach(cpu, att);
  slot.end();
  // release: pairs with the acquire in start().
  ready_.fetch_add(1, std::memory_order_release);
  if (!attached) return;

  const double interval = run_.opt.onoff_interval_s;
  using clock = std::chrono::steady_clock;
  auto jitter = [&r](double s) {
    return std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double>(s * (0.5 + static_cast<double>(r.below(1000)) / 1000)));
  };
  auto next_onoff = clock::now() + jitter(interval);
  while (!run_.stop_hosts.load(std::memory_order_relaxed)) {
    work(r);
    if (!run_.stopping() && !run_.paused.load(std::memory_order_relaxed) &&
        r.one_in(kCallOneIn)) {
      inv.run_one();
    }
    if (r.one_in(kSleepOneIn)) {
      xcall::idle_wait(std::chrono::microseconds(200));
    } else {
      xcall::poll();
    }
    if (interval <= 0 || run_.stopping() || clock::now() < next_onoff) continue;
    next_onoff = clock::now() + jitter(interval);
    int online = run_.online_count.load(std::memory_order_relaxed);
    if (online <= 1 || !run_.online_count.compare_exchange_strong(
                           online, online - 1, std::memory_order_relaxed)) {
      continue;  // keep one CPU online (the count was taken down for us)
    }
    slot.begin("detach", cpu);
    detach(cpu, att);
    slot.begin("offline", cpu);
    const auto back = clock::now() + jitter(interval / 4);
    while (clock::now() < back && !run_.stopping()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    slot.begin("re-attach", cpu);
    const bool ok = attach(cpu, att);
    slot.end();
    if (!ok) return;
  }
  slot.begin("final detach", cpu);
  run_.online_count.fetch_sub(1, std::memory_order_relaxed);
  detach(cpu, att);
  slot.end();
}

}  // namespace xcall_torture
