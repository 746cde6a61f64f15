// hotplug_test.cpp — CPUs going offline and online while calls of every
// form are in flight: owned CPUs through cpu_down/cpu_up, attached CPUs
// through attach/detach; on both engines.
//
// Knowing which CPUs were online for a whole call: each churned CPU has a
// generation counter. The hotplug thread makes it odd *before* it starts
// taking the CPU down and even again only *after* the CPU is back up, so
// while the generation is even and unchanged the CPU is online. A caller reads
// the generations before the call and after it returns; a CPU whose
// generation was even and the same both times was online for the whole call.
// (Soundness: the hotplug thread's seq_cst increment precedes the online bit's
// clearing, and the call reads the online mask with acquire loads; if the
// call's snapshot missed the CPU because it was already going down, the
// increment happened-before the snapshot, so the caller's second read cannot
// see the old generation.)
//
// Checked: every call returns (deadline); single calls return success or
// ENXIO, never anything else, and success with wait means the function ran
// exactly once; a CPU that stayed online for a whole waiting call of a form
// that targets it ran it exactly once; no CPU ever runs a call twice (also for
// no-wait calls, checked after the domain is gone, when every queued call has
// run); call_function_any fails with ENXIO only if no CPU stayed online.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "call_forms.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::failure_log;
using xcall_test::form;
using xcall_test::progress_board;
using xcall_test::rng;
using xcall_test::stopwatch;

constexpr cpu_t kN = 6;
const std::error_code kOk{};
const std::error_code kNxio = std::make_error_code(std::errc::no_such_device_or_address);

std::atomic<long> g_stray{0};

struct record {
  std::atomic<std::uint16_t> runs[kN] = {};
  std::thread::id caller;
  std::atomic<int> on_caller{0};
  void reset() noexcept {
    for (auto& r : runs) r.store(0, std::memory_order_relaxed);
    on_caller.store(0, std::memory_order_relaxed);
    caller = std::this_thread::get_id();
  }
  static void run(void* p) noexcept {
    auto* r = static_cast<record*>(p);
    if (std::this_thread::get_id() == r->caller)
      r->on_caller.fetch_add(1, std::memory_order_relaxed);
    const cpu_t c = xcall::this_cpu();
    if (c >= kN) {
      g_stray.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    r->runs[c].fetch_add(1, std::memory_order_relaxed);
  }
};

// The forms a caller picks from: every form but single_async, any_nowait,
// each_mask_nowait and cond_nowait.
constexpr form kForms[] = {form::single_wait,    form::single_nowait, form::many_wait,
                           form::many_nowait,    form::function_wait, form::function_nowait,
                           form::any_wait,       form::each_wait,     form::each_nowait,
                           form::each_mask_wait, form::cond_wait,     form::fn_single,
                           form::fn_many,        form::fn_each,       form::fn_each_mask};

form random_form(rng& r) { return kForms[r.below(static_cast<std::uint32_t>(std::size(kForms)))]; }

struct world {
  explicit world(domain& dom) : d(dom) {}
  domain& d;
  std::atomic<std::uint64_t> gen[kN] = {};  // odd while the CPU is (going) offline
  std::vector<cpu_t> churned;               // CPUs the hotplug side takes down and up
  failure_log fails;
  std::atomic<long> calls{0}, nxio{0}, hotplugs{0};
  // No-wait records: never reused; checked once the domain is gone.
  std::vector<std::unique_ptr<record>> nowait_records;
  std::mutex nowait_mu;
};

record* nowait_record(world& w) {
  std::lock_guard<std::mutex> lk(w.nowait_mu);
  if (w.nowait_records.size() >= 200000) return nullptr;
  w.nowait_records.push_back(std::make_unique<record>());
  return w.nowait_records.back().get();
}

bool cond_true(cpu_t, void*) noexcept { return true; }

// One call of form `f` by the calling context; checks what can be checked.
void one_call(world& w, form f, cpu_t self, rng& r) {
  domain& d = w.d;
  record stack_rec;
  record* rec = &stack_rec;
  if (!waits(f)) {
    rec = nowait_record(w);
    if (rec == nullptr) return;
  }
  rec->reset();
  const cpu_t target = r.below(kN);
  std::uint64_t before[kN];
  for (cpu_t c = 0; c < kN; ++c) before[c] = w.gen[c].load(std::memory_order_seq_cst);

  const cpumask& online = d.online_mask();  // the live online mask, as scftorture passes it
  const std::error_code ec = xcall_test::call_in_form(
      d, f,
      {.target = target, .mask = online, .func = &record::run, .info = rec, .cond = &cond_true});
  w.calls.fetch_add(1, std::memory_order_relaxed);

  const std::string what =
      std::string(name_of(f)) + " by " +
      (self == no_cpu ? std::string("outside") : "CPU " + std::to_string(self));
  const bool single = f == form::single_wait || f == form::single_nowait || f == form::fn_single;
  if (ec == kNxio && (single || f == form::any_wait)) {
    w.nxio.fetch_add(1, std::memory_order_relaxed);
  } else if (ec) {
    w.fails.add(what + ": returned " + ec.message());
    return;
  }
  if (rec->on_caller.load() != 0 && self == no_cpu)
    w.fails.add(what + ": ran on the outside caller");
  if (!waits(f)) return;  // checked at the end

  std::uint64_t after[kN];
  for (cpu_t c = 0; c < kN; ++c) after[c] = w.gen[c].load(std::memory_order_seq_cst);
  int total = 0;
  for (cpu_t c = 0; c < kN; ++c) {
    const int n = rec->runs[c].load(std::memory_order_acquire);
    total += n;
    if (n > 1)
      w.fails.add(what + ": CPU " + std::to_string(c) + " ran it " + std::to_string(n) + " times");
    const bool stayed_online = before[c] % 2 == 0 && before[c] == after[c];
    const bool local_form = f == form::each_wait || f == form::each_mask_wait ||
                            f == form::cond_wait || f == form::fn_each || f == form::fn_each_mask;
    bool must_run = false;
    if (single) {
      must_run = c == target && !ec;
    } else if (f == form::any_wait) {
      must_run = false;
    } else {
      must_run = stayed_online && (c != self || local_form);
    }
    if (must_run && n != 1) {
      w.fails.add(what + ": CPU " + std::to_string(c) + ", online for the whole call, ran it " +
                  std::to_string(n) + " times");
    }
    if (c == self && !local_form && !single && f != form::any_wait && n != 0) {
      w.fails.add(what + ": ran on the caller's own CPU");
    }
  }
  if (single && !ec && total != 1)
    w.fails.add(what + ": succeeded but ran " + std::to_string(total) + " times");
  if (single && ec && total != 0) w.fails.add(what + ": ENXIO but ran anyway");
  if (single && ec == kNxio && before[target] % 2 == 0 && before[target] == after[target]) {
    w.fails.add(what + ": ENXIO for CPU " + std::to_string(target) + ", online for the whole call");
  }
  if (f == form::any_wait && !ec && total != 1) {
    w.fails.add(what + ": ran " + std::to_string(total) + " times");
  }
  if (f == form::any_wait && ec == kNxio) {
    for (cpu_t c = 0; c < kN; ++c) {
      if (before[c] % 2 == 0 && before[c] == after[c]) {
        w.fails.add(what + ": ENXIO although CPU " + std::to_string(c) + " was online throughout");
        break;
      }
    }
  }
}

void caller_loop(world& w, cpu_t self, unsigned seed, const stopwatch& sw, progress_board& pb,
                 std::size_t slot) {
  rng r(seed);
  while (!sw.expired()) {
    const form f = random_form(r);
    pb.at(slot, name_of(f));
    one_call(w, f, self, r);
    pb.tick(slot);
    if (self != no_cpu) xcall::poll();
  }
  pb.at(slot, "done");
}

void check_nowait_records(world& w) {
  for (auto& rec : w.nowait_records) {
    for (cpu_t c = 0; c < kN; ++c) {
      const int n = rec->runs[c].load();
      if (n > 1)
        w.fails.add("no-wait call: CPU " + std::to_string(c) + " ran it " + std::to_string(n) +
                    " times");
    }
  }
}

// Both scenarios run once per engine (HotplugStressTest.*/percpu, /classic):
// the engines take a CPU offline differently (a closed queue vs. a shared
// hotplug lock and one last walk of the call list).
class HotplugStressTest : public xcall_test::engine_test {};

// Owned CPUs: CPU 0 and 1 stay online; 2..5 go down and up.
TEST_P(HotplugStressTest, CpuDownUpChurnDuringCallsOfEveryForm) {
  auto dom = std::make_unique<domain>(xcall_test::owned_options(kN, engine()));
  world w(*dom);
  w.churned = {2, 3, 4, 5};
  constexpr int kOutside = 3, kDrivers = 1;
  progress_board pb(1 + kOutside + kDrivers);
  xcall_test::scoped_hang_diagnostic diag([&] {
    // append(), not " " + to_string(): GCC 12 at -O3 reports a -Wrestrict
    // false positive for a const char* + std::string&& inside a lambda.
    std::string s = pb.render() + "\nonline:";
    for (cpu_t c = 0; c < kN; ++c) s.append(" ").append(std::to_string(w.d.cpu_online(c)));
    return s;
  });

  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "hotplug churn (owned)", [&] {
    stopwatch sw;
    std::vector<std::thread> ts;
    pb.name(0, "hotplug");
    ts.emplace_back([&] {
      rng r(7);
      while (!sw.expired()) {
        const cpu_t c = w.churned[r.below(static_cast<std::uint32_t>(w.churned.size()))];
        w.gen[c].fetch_add(1, std::memory_order_seq_cst);  // odd: going down
        pb.at(0, "cpu_down");
        if (auto ec = w.d.cpu_down(c)) w.fails.add("cpu_down: " + ec.message());
        if (w.d.cpu_online(c)) w.fails.add("online after cpu_down returned");
        std::this_thread::sleep_for(std::chrono::microseconds(r.below(300)));
        pb.at(0, "cpu_up");
        if (auto ec = w.d.cpu_up(c)) w.fails.add("cpu_up: " + ec.message());
        if (!w.d.cpu_online(c)) w.fails.add("offline after cpu_up returned");
        w.gen[c].fetch_add(1, std::memory_order_seq_cst);  // even: up again
        w.hotplugs.fetch_add(1);
        pb.tick(0);
        std::this_thread::sleep_for(std::chrono::microseconds(r.below(300)));
      }
      pb.at(0, "done");
    });
    for (int i = 0; i < kOutside; ++i) {
      pb.name(1 + i, "outside caller " + std::to_string(i));
      ts.emplace_back([&, i] { caller_loop(w, no_cpu, 100 + i, sw, pb, 1 + i); });
    }
    // Handlers as callers: on CPU 0 (never hotplugged) and on churned CPUs
    // (their single call may get ENXIO, and cpu_down must wait for them).
    pb.name(1 + kOutside, "handler driver");
    ts.emplace_back([&] {
      rng r(200);
      const std::size_t slot = 1 + kOutside;
      while (!sw.expired()) {
        const cpu_t h = r.below(2) ? 0 : r.below(kN);
        pb.at(slot, "callable call to a handler caller");
        const std::error_code ec = w.d.call_function_single(h, [&] {
          rng hr(r.next());
          for (int k = 0; k < 3; ++k) {
            one_call(w, random_form(hr), h, hr);
          }
        });
        if (ec && ec != kNxio) w.fails.add("driver: " + ec.message());
        pb.tick(slot);
      }
      pb.at(slot, "done");
    });
    for (auto& t : ts) t.join();
  });
  dom.reset();  // every queued call runs before the CPUs are gone
  check_nowait_records(w);

  EXPECT_EQ(w.fails.count(), 0) << w.fails.summary();
  EXPECT_EQ(g_stray.load(), 0);
  EXPECT_GT(w.hotplugs.load(), 5) << "too little hotplug to mean anything";
  EXPECT_GT(w.calls.load(), 50);
  std::printf("calls %ld (ENXIO %ld), hotplug cycles %ld\n", w.calls.load(), w.nxio.load(),
              w.hotplugs.load());
}

// Attached CPUs: hosts of CPUs 2..5 keep attaching and detaching (coming
// online and going offline) while hosts of 0 and 1 and outside threads call.
TEST_P(HotplugStressTest, AttachDetachChurnDuringCallsOfEveryForm) {
  auto dom = std::make_unique<domain>(xcall_test::attached_domain_options(kN, engine()));
  world w(*dom);
  w.churned = {2, 3, 4, 5};
  for (cpu_t c = 0; c < kN; ++c) w.gen[c].store(1);  // every CPU starts offline
  constexpr int kOutside = 2;
  progress_board pb(kN + kOutside);
  xcall_test::scoped_hang_diagnostic diag([&] { return pb.render(); });

  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "hotplug churn (attached)", [&] {
    stopwatch sw;
    std::atomic<int> stable_done{0};
    std::atomic<int> stable_up{0};
    std::vector<std::thread> ts;
    // Stable hosts: CPUs 0 and 1, calling and serving for the whole test.
    for (cpu_t h : {0u, 1u}) {
      pb.name(h, "stable host " + std::to_string(h));
      ts.emplace_back([&, h] {
        auto att = w.d.attach(h);
        w.gen[h].fetch_add(1, std::memory_order_seq_cst);  // even: online
        stable_up.fetch_add(1);
        caller_loop(w, h, 300 + h, sw, pb, h);
        stable_done.fetch_add(1);
        pb.at(h, "serving until everyone is done");
        while (stable_done.load() < 2 + kOutside) (void)xcall::idle_wait(1ms);
        w.gen[h].fetch_add(1, std::memory_order_seq_cst);
      });
    }
    // Churning hosts: attach, serve (and call) a little, detach, repeat.
    for (cpu_t h : w.churned) {
      pb.name(h, "churning host " + std::to_string(h));
      ts.emplace_back([&, h] {
        rng r(400 + h);
        while (!sw.expired()) {
          pb.at(h, "attach");
          {
            auto att = w.d.attach(h);
            w.gen[h].fetch_add(1, std::memory_order_seq_cst);  // even: online
            const auto until =
                std::chrono::steady_clock::now() + std::chrono::microseconds(50 + r.below(500));
            while (std::chrono::steady_clock::now() < until) {
              pb.at(h, "serving");
              if (r.below(4) == 0) {
                one_call(w, random_form(r), h, r);
              }
              (void)xcall::idle_wait(20us);
            }
            w.gen[h].fetch_add(1, std::memory_order_seq_cst);  // odd: going offline
            pb.at(h, "detach");
          }
          w.hotplugs.fetch_add(1);
          pb.tick(h);
          std::this_thread::sleep_for(std::chrono::microseconds(r.below(200)));
        }
        pb.at(h, "done");
      });
    }
    unsigned i = 0;
    while (stable_up.load() < 2) xcall_test::backoff(i);
    for (int k = 0; k < kOutside; ++k) {
      pb.name(kN + k, "outside caller " + std::to_string(k));
      ts.emplace_back([&, k] {
        caller_loop(w, no_cpu, 500 + k, sw, pb, kN + k);
        stable_done.fetch_add(1);
      });
    }
    for (auto& t : ts) t.join();
  });
  dom.reset();
  check_nowait_records(w);

  EXPECT_EQ(w.fails.count(), 0) << w.fails.summary();
  EXPECT_EQ(g_stray.load(), 0);
  EXPECT_GT(w.hotplugs.load(), 5);
  EXPECT_GT(w.calls.load(), 50);
  std::printf("calls %ld (ENXIO %ld), attach/detach cycles %ld\n", w.calls.load(), w.nxio.load(),
              w.hotplugs.load());
}

XCALL_TEST_ON_EVERY_ENGINE(HotplugStressTest);

}  // namespace
