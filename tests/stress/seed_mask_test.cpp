// seed_mask_test.cpp — the seed scenario (kernel commit
// "smp_call_function_many: handle concurrent clearing of mask"): churn
// threads keep setting and clearing bits of a shared live cpumask while
// callers — outside threads, handlers on owned CPUs, attached hosts — call
// call_function_many() on it, with and without wait.
//
// How the guarantees become checkable: the CPUs of the domain are split into
//  - pinned: their bits in the live mask are set before the test and never
//    touched by the churners (every operation the churners use keeps them set),
//    and they stay online; so they are "online and in the mask for the whole
//    call" for every call: each must run each call exactly once (guarantee 1);
//  - churned: the churners flip their bits; each may run a call at most once
//    (guarantee 2);
//  - offline: never online; never run anything.
// Every call gets its own record (on the caller's stack for wait calls, in an
// arena never reused for no-wait calls) with a counter per CPU, incremented by
// the function on this_cpu(). Wait calls are checked when they return; no-wait
// calls are checked once their pinned CPUs all ran (with a deadline) and again
// after the domain is gone (every queued call has run by then: hosts drain on
// detach, owned CPUs on destruction), so a late duplicate is caught too.
// The caller never runs its own call: its own CPU's counter stays 0 and the
// function never runs on the caller's thread. Nothing hangs: run_with_deadline.
// Beside them, threads spin on masks with no online target (empty, offline
// CPUs only, only the caller's own CPU): success, nothing runs.
// Every scenario runs on both engines.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::failure_log;
using xcall_test::progress_board;
using xcall_test::rng;
using xcall_test::stopwatch;

constexpr cpu_t kMaxTrack = 130;

std::atomic<long> g_stray{0};  // a function ran on a thread that hosts no CPU

enum class target_set : std::uint8_t {
  live,        // pinned ∪ churned: pinned must run exactly once
  churn_only,  // churned only: anything may run, at most once
  nothing,     // empty / offline-only / self-only: nothing may run
};

struct call_record {
  cpu_t self = no_cpu;
  target_set set = target_set::live;
  bool wait = false;
  std::thread::id caller;
  std::atomic<std::uint16_t>* runs = nullptr;  // one counter per CPU
  std::atomic<int> on_caller{0};

  void reset(cpu_t self_cpu, target_set s, bool w, cpu_t nr) noexcept {
    self = self_cpu;
    set = s;
    wait = w;
    caller = std::this_thread::get_id();
    for (cpu_t c = 0; c < nr; ++c) runs[c].store(0, std::memory_order_relaxed);
    on_caller.store(0, std::memory_order_relaxed);
  }
  static void run(void* p) noexcept {
    auto* r = static_cast<call_record*>(p);
    const cpu_t c = xcall::this_cpu();
    if (std::this_thread::get_id() == r->caller)
      r->on_caller.fetch_add(1, std::memory_order_relaxed);
    if (c >= kMaxTrack) {
      g_stray.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    r->runs[c].fetch_add(1, std::memory_order_relaxed);
  }
};

// A record with its counters, for a wait call (on the caller's stack).
struct stack_record {
  stack_record() noexcept { rec.runs = counters; }
  call_record rec;
  std::atomic<std::uint16_t> counters[kMaxTrack] = {};
};

// A fixed arena of records for no-wait calls: never reused, checked at the end.
class record_arena {
 public:
  record_arena(std::size_t n, cpu_t nr)
      : records_(std::make_unique<call_record[]>(n)),
        counters_(std::make_unique<std::atomic<std::uint16_t>[]>(n * nr)),
        n_(n) {
    for (std::size_t i = 0; i < n; ++i) records_[i].runs = &counters_[i * nr];
  }
  call_record* take() noexcept {
    if (next_.load(std::memory_order_relaxed) >= n_) return nullptr;
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    return i < n_ ? &records_[i] : nullptr;
  }
  std::size_t used() const noexcept {
    const std::size_t u = next_.load(std::memory_order_relaxed);
    return u < n_ ? u : n_;
  }
  call_record& operator[](std::size_t i) noexcept { return records_[i]; }

 private:
  std::unique_ptr<call_record[]> records_;
  std::unique_ptr<std::atomic<std::uint16_t>[]> counters_;
  const std::size_t n_;
  std::atomic<std::size_t> next_{0};
};

// The shared state of one scenario.
struct world {
  world(domain& dom, std::vector<cpu_t> pinned_cpus, std::vector<cpu_t> churned_cpus)
      : d(dom),
        nr(dom.nr_cpu_ids()),
        pinned(nr),
        churned_list(std::move(churned_cpus)),
        live(nr),
        churn_only(nr),
        empty(nr),
        offline_only(nr),
        arena(std::size_t{1} << 16, nr) {
    nothing_rec.runs = nothing_counters;
    nothing_rec.reset(no_cpu, target_set::nothing, false, kMaxTrack);
    nothing_rec.caller = std::thread::id();
    for (cpu_t c : pinned_cpus) pinned.set(c);
    live |= pinned;
    for (cpu_t c : churned_list) live.set(c);
  }

  domain& d;
  const cpu_t nr;
  cpumask pinned;
  std::vector<cpu_t> churned_list;
  cpumask live;
  cpumask churn_only;
  cpumask empty;
  cpumask offline_only;
  cpumask online_all_along{1};  // set by the scenario once its CPUs are up
  record_arena arena;
  // Shared by every no-wait call with no target: whatever runs it is wrong.
  call_record nothing_rec;
  std::atomic<std::uint16_t> nothing_counters[kMaxTrack] = {};
  failure_log fails;
  std::atomic<long> calls_wait{0}, calls_nowait{0}, calls_nothing{0};
  std::atomic<bool> stop_churn{false};
};

std::string describe(const call_record& r) {
  std::string s = r.wait ? "wait" : "no-wait";
  s += r.set == target_set::live         ? " live"
       : r.set == target_set::churn_only ? " churn-only"
                                         : " nothing";
  s += " call by ";
  s += r.self == no_cpu ? std::string("an outside thread") : "CPU " + std::to_string(r.self);
  return s;
}

// Checks one record. `final` = every run that will ever happen has happened.
void check_record(world& w, const call_record& r, bool final) {
  if (r.on_caller.load()) w.fails.add(describe(r) + ": ran on the caller's own thread");
  for (cpu_t c = 0; c < w.nr && c < kMaxTrack; ++c) {
    const int n = r.runs[c].load(std::memory_order_acquire);
    if (n > 1) {
      w.fails.add(describe(r) + ": CPU " + std::to_string(c) + " ran it " + std::to_string(n) +
                  " times");
    }
    if (n != 0 && c == r.self) w.fails.add(describe(r) + ": the caller's own CPU ran it");
    if (n != 0 && !w.online_all_along.test(c)) {
      w.fails.add(describe(r) + ": CPU " + std::to_string(c) + ", never online, ran it");
    }
    if (n != 0 && r.set == target_set::nothing) {
      w.fails.add(describe(r) + ": CPU " + std::to_string(c) + " ran a call with no target");
    }
    const bool required =
        r.set == target_set::live && w.pinned.test(c) && c != r.self && w.online_all_along.test(c);
    if (required && n != 1 && (final || r.wait)) {
      w.fails.add(describe(r) + ": pinned online CPU " + std::to_string(c) + " ran it " +
                  std::to_string(n) + " times, expected once");
    }
  }
}

bool pinned_done(world& w, const call_record& r) {
  if (r.set != target_set::live) return true;
  for (cpu_t c = 0; c < w.nr; ++c) {
    if (w.pinned.test(c) && c != r.self && w.online_all_along.test(c) &&
        r.runs[c].load(std::memory_order_acquire) == 0) {
      return false;
    }
  }
  return true;
}

// One call_function_many by the calling context (self = its CPU or no_cpu).
void do_call(world& w, cpu_t self, bool wait, target_set set, const cpumask& mask) {
  stack_record stack_rec;
  call_record* rec = &stack_rec.rec;
  if (!wait && set == target_set::nothing) {
    rec = &w.nothing_rec;  // nothing may run it: no need for a record of its own
  } else if (!wait) {
    rec = w.arena.take();
    if (rec == nullptr) {  // arena full: keep going with waiting calls
      rec = &stack_rec.rec;
      wait = true;
    }
  }
  if (rec != &w.nothing_rec) rec->reset(self, set, wait, w.nr);
  const std::error_code ec = w.d.call_function_many(mask, &call_record::run, rec, wait);
  if (ec) w.fails.add(describe(*rec) + ": returned " + ec.message());
  if (wait) check_record(w, *rec, /*final=*/true);
  (set == target_set::nothing ? w.calls_nothing
   : wait                     ? w.calls_wait
                              : w.calls_nowait)
      .fetch_add(1, std::memory_order_relaxed);
}

enum class wait_policy { always, never, mixed };

bool pick_wait(wait_policy p, rng& r) {
  return p == wait_policy::always || (p == wait_policy::mixed && r.below(2) == 0);
}

// A caller's step: mostly the live mask, sometimes the churn-only mask.
void caller_step(world& w, cpu_t self, wait_policy p, rng& r) {
  const bool wait = pick_wait(p, r);
  if (r.below(4) == 0) {
    do_call(w, self, wait, target_set::churn_only, w.churn_only);
  } else {
    do_call(w, self, wait, target_set::live, w.live);
  }
}

// Churner: flips churned bits of live and churn_only with every mask
// operation; none of them can clear a pinned bit.
void churn(world& w, unsigned seed, progress_board& pb, std::size_t slot) {
  rng r(seed);
  cpumask keep(w.nr);  // pinned ∪ a random subset of churned, for &=
  cpumask add(w.nr);   // a random subset of churned, for |=
  unsigned ops = 0;
  while (!w.stop_churn.load(std::memory_order_relaxed)) {
    const cpu_t c = w.churned_list[r.below(static_cast<std::uint32_t>(w.churned_list.size()))];
    cpumask& m = r.below(3) == 0 ? w.churn_only : w.live;
    switch (r.below(8)) {
      case 0:
        m.set(c);
        break;
      case 1:
        m.reset(c);
        break;
      case 2:
        (void)m.test_and_set(c);
        break;
      case 3:
        (void)m.test_and_reset(c);
        break;
      case 4:
        keep.reset_all();
        keep |= w.pinned;
        for (cpu_t k : w.churned_list) {
          if (r.below(2)) keep.set(k);
        }
        m &= keep;
        break;
      case 5:
        add.reset_all();
        for (cpu_t k : w.churned_list) {
          if (r.below(2)) add.set(k);
        }
        m |= add;
        break;
      case 6:
        w.churn_only.reset_all();  // churn_only holds no pinned bit
        break;
      case 7:
        for (cpu_t k : w.churned_list) w.churn_only.set(k);
        break;
    }
    pb.tick(slot);
    if (++ops % 16 == 0) std::this_thread::yield();  // two cores: let callers run
  }
}

// Spins on masks with no online target: success, nothing runs.
void nothing_spinner(world& w, const stopwatch& sw, progress_board& pb, std::size_t slot) {
  rng r(99);
  unsigned n = 0;
  while (!sw.expired()) {
    const bool wait = r.below(2) == 0;
    pb.at(slot, wait ? "nothing-mask wait" : "nothing-mask no-wait");
    do_call(w, no_cpu, wait, target_set::nothing, r.below(2) ? w.empty : w.offline_only);
    pb.tick(slot);
    // These calls cost next to nothing; keep them from crowding out the
    // callers that do reach CPUs on a 2-core machine.
    if (++n % 8 == 0) std::this_thread::sleep_for(20us);
  }
  pb.at(slot, "done");
}

// Final checks of the no-wait records: first that each pinned CPU ran each
// one (with a deadline, while the domain still lives), then — `final` — that
// nothing ran twice.
void check_arena(world& w, bool final) {
  if (final) check_record(w, w.nothing_rec, true);
  const std::size_t used = w.arena.used();
  for (std::size_t i = 0; i < used; ++i) {
    call_record& r = w.arena[i];
    if (!final && !xcall_test::eventually([&] { return pinned_done(w, r); }, 20s)) {
      w.fails.add(describe(r) + ": a pinned CPU never ran this no-wait call");
    }
    if (final) check_record(w, r, true);
  }
}

std::string scenario_report(world& w) {
  return "calls: " + std::to_string(w.calls_wait.load()) + " wait, " +
         std::to_string(w.calls_nowait.load()) + " no-wait, " +
         std::to_string(w.calls_nothing.load()) + " with no target";
}

// ---------------------------------------------------------------------------
// Owned CPUs: outside callers and handlers as callers.
//
// 8 CPUs; CPU 7 is offline for the whole test. Pinned {0, 2, 4, 6}, churned
// {1, 3, 5, 7} (7 is offline: a set bit of an offline CPU must be ignored).

void owned_scenario(wait_policy policy, xcall::engine engine) {
  constexpr cpu_t kN = 8;
  constexpr int kOutside = 2, kDrivers = 2, kChurners = 2;
  progress_board pb(kOutside + kDrivers + kChurners + 1);
  auto dom = std::make_unique<domain>(xcall_test::owned_options(kN, engine));
  ASSERT_EQ(dom->cpu_down(7), std::error_code());
  world w(*dom, {0, 2, 4, 6}, {1, 3, 5, 7});
  w.online_all_along = cpumask(kN);
  for (cpu_t c = 0; c < 7; ++c) w.online_all_along.set(c);
  w.offline_only.set(7);
  xcall_test::scoped_hang_diagnostic diag([&] { return pb.render() + "\n" + scenario_report(w); });

  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "seed scenario (owned CPUs)", [&] {
    stopwatch sw;
    std::vector<std::thread> ts;
    std::size_t slot = 0;
    for (int i = 0; i < kChurners; ++i, ++slot) {
      pb.name(slot, "churner " + std::to_string(i));
      ts.emplace_back([&, i, slot] { churn(w, 1000 + i, pb, slot); });
    }
    std::vector<std::thread> callers;
    for (int i = 0; i < kOutside; ++i, ++slot) {
      pb.name(slot, "outside caller " + std::to_string(i));
      callers.emplace_back([&, i, slot] {
        rng r(2000 + i);
        while (!sw.expired()) {
          pb.at(slot, "call_function_many");
          caller_step(w, no_cpu, policy, r);
          pb.tick(slot);
        }
        pb.at(slot, "done");
      });
    }
    // Drivers make handlers on CPUs 0..6 the callers: each handler runs a few
    // call_function_many()s from its CPU, so handlers wait on each other.
    for (int i = 0; i < kDrivers; ++i, ++slot) {
      pb.name(slot, "handler driver " + std::to_string(i));
      callers.emplace_back([&, i, slot] {
        rng r(3000 + i);
        while (!sw.expired()) {
          const cpu_t h = r.below(7);
          pb.at(slot, "callable call_function_single to a handler caller");
          const std::error_code ec = dom->call_function_single(h, [&] {
            rng hr(r.next());
            if (xcall::this_cpu() != h) w.fails.add("handler ran on the wrong CPU");
            for (int k = 0; k < 4; ++k) caller_step(w, h, policy, hr);
            // Only its own CPU in the mask: nothing to do.
            cpumask self_only(kN);
            self_only.set(h);
            do_call(w, h, hr.below(2) == 0, target_set::nothing, self_only);
          });
          if (ec) w.fails.add("driver call to CPU " + std::to_string(h) + ": " + ec.message());
          pb.tick(slot);
        }
        pb.at(slot, "done");
      });
    }
    pb.name(slot, "nothing spinner");
    callers.emplace_back([&, slot] { nothing_spinner(w, sw, pb, slot); });

    for (auto& t : callers) t.join();
    w.stop_churn.store(true);
    for (auto& t : ts) t.join();
    check_arena(w, /*final=*/false);
  });
  // Destruction takes every CPU down; each runs what is still queued.
  dom.reset();
  check_arena(w, /*final=*/true);

  EXPECT_EQ(w.fails.count(), 0) << w.fails.summary();
  EXPECT_EQ(g_stray.load(), 0) << "functions ran on threads that host no CPU";
  const long made = w.calls_wait.load() + w.calls_nowait.load();
  EXPECT_GT(made, 20) << "the scenario made too few calls to mean anything";
  if (policy != wait_policy::always) {
    EXPECT_GT(w.calls_nowait.load(), 0);
  }
  if (policy != wait_policy::never) {
    EXPECT_GT(w.calls_wait.load(), 0);
  }
  std::printf("%s\n", scenario_report(w).c_str());
}

// Every scenario runs once per engine (SeedMaskTest.*/percpu, /classic). The
// classic engine is the seed's own design (live cpumask and refs in a shared
// call block): on it, these are the scenarios the seed fix was written for.
class SeedMaskTest : public xcall_test::engine_test {};

TEST_P(SeedMaskTest, OwnedCpusCallersWait) { owned_scenario(wait_policy::always, engine()); }

TEST_P(SeedMaskTest, OwnedCpusCallersDoNotWait) { owned_scenario(wait_policy::never, engine()); }

TEST_P(SeedMaskTest, OwnedCpusCallersMixWaitAndNoWait) {
  owned_scenario(wait_policy::mixed, engine());
}

// ---------------------------------------------------------------------------
// Attached hosts as callers, on a domain whose mask spans three words.
//
// 130 CPUs, of which 6 are attached: pinned {0, 64, 128}, churned {63, 127,
// 129} plus the offline {1, 65, 100} (their bits flip too and must be
// ignored). Every host calls, serves (poll/idle_wait) and drains while it
// waits; hosts stay attached until every caller is done.

TEST_P(SeedMaskTest, AttachedHostsAcrossMaskWords) {
  constexpr cpu_t kN = 130;
  const std::vector<cpu_t> hosts = {0, 64, 128, 63, 127, 129};
  constexpr int kOutside = 1, kChurners = 2;
  const int kCallers = static_cast<int>(hosts.size()) + kOutside + 1;
  progress_board pb(hosts.size() + kOutside + kChurners + 1);
  auto dom = std::make_unique<domain>(xcall_test::attached_domain_options(kN, engine()));
  world w(*dom, {0, 64, 128}, {63, 127, 129, 1, 65, 100});
  w.online_all_along = cpumask(kN);
  for (cpu_t c : hosts) w.online_all_along.set(c);
  w.offline_only.set(1);
  w.offline_only.set(100);
  xcall_test::scoped_hang_diagnostic diag([&] { return pb.render() + "\n" + scenario_report(w); });

  xcall_test::run_with_deadline(
      xcall_test::stress_deadline(), "seed scenario (attached hosts)", [&] {
        xcall_test::start_gate all_attached;
        std::atomic<int> attached{0}, callers_done{0};
        stopwatch* sw = nullptr;
        std::vector<std::thread> ts;
        std::size_t slot = 0;
        for (cpu_t h : hosts) {
          pb.name(slot, "host of CPU " + std::to_string(h));
          ts.emplace_back([&, h, slot] {
            auto att = dom->attach(h);
            attached.fetch_add(1);
            all_attached.wait();
            rng r(4000 + h);
            cpumask self_only(kN);
            self_only.set(h);
            while (!sw->expired()) {
              pb.at(slot, "call_function_many");
              caller_step(w, h, wait_policy::mixed, r);
              if (r.below(8) == 0) {
                pb.at(slot, "self-only mask");
                do_call(w, h, r.below(2) == 0, target_set::nothing, self_only);
              }
              pb.at(slot, "poll");
              xcall::poll();
              if (r.below(16) == 0) {
                pb.at(slot, "idle_wait");
                (void)xcall::idle_wait(50us);
              }
              pb.tick(slot);
            }
            callers_done.fetch_add(1);
            // Keep serving until nobody calls any more (others' calls target us)
            // and the no-wait records were checked: kCallers, then the checker.
            pb.at(slot, "serving until every caller is done");
            while (callers_done.load() < kCallers + 1) (void)xcall::idle_wait(1ms);
            pb.at(slot, "detaching");
          });
          ++slot;
        }
        unsigned i = 0;
        while (attached.load() != static_cast<int>(hosts.size())) xcall_test::backoff(i);
        stopwatch watch;
        sw = &watch;
        all_attached.open();

        for (int k = 0; k < kChurners; ++k, ++slot) {
          pb.name(slot, "churner " + std::to_string(k));
          ts.emplace_back([&, k, slot] { churn(w, 5000 + k, pb, slot); });
        }
        std::vector<std::thread> others;
        for (int k = 0; k < kOutside; ++k, ++slot) {
          pb.name(slot, "outside caller " + std::to_string(k));
          others.emplace_back([&, k, slot] {
            rng r(6000 + k);
            while (!watch.expired()) {
              pb.at(slot, "call_function_many");
              caller_step(w, no_cpu, wait_policy::mixed, r);
              pb.tick(slot);
            }
            pb.at(slot, "done");
            callers_done.fetch_add(1);
          });
        }
        pb.name(slot, "nothing spinner");
        others.emplace_back([&, slot] {
          nothing_spinner(w, watch, pb, slot);
          callers_done.fetch_add(1);
        });
        for (auto& t : others) t.join();
        // The hosts are done calling too: their count (seq_cst) orders the
        // records they filled before this thread reads them.
        i = 0;
        while (callers_done.load() < kCallers) xcall_test::backoff(i);
        // Pinned CPUs must have run every no-wait call while still attached.
        check_arena(w, /*final=*/false);
        callers_done.fetch_add(1);  // the checker: hosts may detach now
        w.stop_churn.store(true);
        for (auto& t : ts) t.join();  // hosts detach: each runs what is queued for it
      });
  dom.reset();
  check_arena(w, /*final=*/true);

  EXPECT_EQ(w.fails.count(), 0) << w.fails.summary();
  EXPECT_EQ(g_stray.load(), 0);
  EXPECT_GT(w.calls_wait.load(), 10);
  EXPECT_GT(w.calls_nowait.load(), 10);
  std::printf("%s\n", scenario_report(w).c_str());
}

XCALL_TEST_ON_EVERY_ENGINE(SeedMaskTest);

}  // namespace
