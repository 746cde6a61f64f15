// attached_delivery_test.cpp — every way a call reaches an application
// thread, at once: hosts that compute without polling (signal delivery),
// compute inside irq_guards, park in blocking regions (proxy), and call each
// other with wait from their handlers, while outside callers fan calls out to
// all of them. Every call must run exactly once per target, on the right CPU,
// never inside a guard, and nothing may hang. Runs under TSan/ASan in CI.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "app_host.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::attach_options;
using xcall::cpu_t;
using xcall::delivery_mode;
using xcall_test::app_host;

constexpr cpu_t kCpus = 4;

/// Per-CPU run counts, and the checks a function makes where it runs.
struct ledger {
  std::atomic<std::uint64_t> runs[kCpus]{};
  std::atomic<int> wrong_cpu{0};
  std::atomic<int> inside_guard{0};
  xcall::domain* d = nullptr;
};

/// Set by a host while it computes inside its own irq_guard.
thread_local bool t_in_guarded_computation = false;

void count(void* p) noexcept {
  auto* l = static_cast<ledger*>(p);
  const cpu_t cpu = xcall::this_cpu();
  if (cpu >= kCpus) {
    l->wrong_cpu.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (t_in_guarded_computation) l->inside_guard.fetch_add(1, std::memory_order_relaxed);
  l->runs[cpu].fetch_add(1, std::memory_order_relaxed);
}

/// A function that, on its CPU, calls the next CPU with wait (from a signal
/// handler, a proxy or a poll), then counts itself.
void call_next(void* p) noexcept {
  auto* l = static_cast<ledger*>(p);
  const cpu_t cpu = xcall::this_cpu();
  if (cpu < kCpus) (void)l->d->call_function_single((cpu + 1) % kCpus, &count, l, true);
  count(p);
}

/// A host's own life: compute without polling, compute inside a guard, park
/// in a blocking region, poll now and then; in a random mix.
void host_life(app_host& h, ledger& own, unsigned seed) {
  std::minstd_rand rng(seed);
  using clock = std::chrono::steady_clock;
  while (!h.stop_requested()) {
    const auto until = clock::now() + std::chrono::microseconds(rng() % 500);
    switch (rng() % 5) {
      case 0:
      case 1:
        h.compute([&] { return clock::now() >= until; });
        break;
      case 2: {
        xcall::irq_guard guard;
        t_in_guarded_computation = true;
        h.compute([&] { return clock::now() >= until; });
        t_in_guarded_computation = false;
        break;
      }
      case 3: {
        xcall::blocking_region region;  // parks only with proxy on
        ::poll(nullptr, 0, 1);          // a blocking system call
        break;
      }
      default:
        // Calls of our own: to another CPU, waiting (served by our waits).
        (void)own.d->call_function_single(rng() % kCpus, &count, &own, true);
        xcall::poll();
    }
  }
}

TEST(AttachedDelivery, EveryModeAtOnceRunsEachCallOnceAndNeverInsideAGuard) {
  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "attached delivery", [] {
    xcall::domain_options o = xcall_test::attached_domain_options(kCpus);
    o.stall_timeout = 10s;
    for (xcall::engine e : xcall_test::kEngines) {
      o.engine_kind = e;
      xcall::domain d(o);
      ledger l;    // the outside callers' calls: counted exactly
      ledger own;  // the hosts' own calls
      l.d = &d;
      own.d = &d;
      const attach_options modes[kCpus] = {
          {delivery_mode::signal, false},
          {delivery_mode::signal, true},
          {delivery_mode::poll, true},
          {delivery_mode::signal, false},
      };
      std::vector<std::unique_ptr<app_host>> hosts;
      for (cpu_t c = 0; c < kCpus; ++c) {
        hosts.push_back(std::make_unique<app_host>(
            d, c, modes[c], [&own, c](app_host& h) { host_life(h, own, 17 + c); }));
      }
      std::atomic<std::uint64_t> fanned{0};  // calls that every CPU must run
      std::atomic<std::uint64_t> chained{0};
      const auto end = std::chrono::steady_clock::now() + xcall_test::stress_duration() / 2;
      auto caller = [&](unsigned seed) {
        std::minstd_rand rng(seed);
        while (std::chrono::steady_clock::now() < end) {
          switch (rng() % 3) {
            case 0:
              ASSERT_FALSE(d.on_each_cpu(&count, &l, true));
              fanned.fetch_add(1);
              break;
            case 1:
              ASSERT_FALSE(d.call_function_single(rng() % kCpus, &call_next, &l, true));
              chained.fetch_add(1);
              break;
            default:
              ASSERT_FALSE(d.call_function_many(d.online_mask(), &count, &l, true));
              fanned.fetch_add(1);
          }
        }
      };
      std::thread c1(caller, 1), c2(caller, 2);
      c1.join();
      c2.join();
      hosts.clear();  // each host detaches: its CPU runs what is left
      std::uint64_t total = 0;
      for (cpu_t c = 0; c < kCpus; ++c) {
        total += l.runs[c].load();
        EXPECT_GE(l.runs[c].load(), fanned.load()) << "CPU " << c << " missed fanned-out calls";
      }
      EXPECT_EQ(l.wrong_cpu.load() + own.wrong_cpu.load(), 0);
      EXPECT_EQ(l.inside_guard.load() + own.inside_guard.load(), 0)
          << "a call ran inside a host's irq_guard";
      // Exactly once per target: fanned x CPUs, plus 2 runs per chained call.
      EXPECT_EQ(total, fanned.load() * kCpus + 2 * chained.load());
      const auto s = d.stats();
      std::uint64_t handler_runs = 0, proxy_runs = 0;
      for (const auto& st : s) {
        handler_runs += st.signal_runs;
        proxy_runs += st.proxy_runs;
      }
      EXPECT_GT(handler_runs, 0u) << "no call reached a host through its signal";
      EXPECT_GT(proxy_runs, 0u) << "no call was run by a proxy";
      std::printf("[ %s ] fanned %llu, chained %llu, handler runs %llu, proxy runs %llu\n",
                  xcall_test::engine_name(e), static_cast<unsigned long long>(fanned.load()),
                  static_cast<unsigned long long>(chained.load()),
                  static_cast<unsigned long long>(handler_runs),
                  static_cast<unsigned long long>(proxy_runs));
    }
  });
}

}  // namespace
