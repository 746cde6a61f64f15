// main.cpp — xcall-torture: builds the domain, starts the invokers, the
// churn threads, the attached hosts and the watchdog, prints statistics
// while the run lasts, then stops everything in order, checks that no call
// was lost, and ends with "End of test: SUCCESS" (exit 0) or "FAILURE"
// (exit 1). Bad options exit 2 (see options.cpp).
//
// Stop order matters: invokers first (no new calls), then churn and hotplug,
// then a wait until every no-wait call has run (the hosts keep serving
// calls meanwhile), then the attached hosts detach, then the domain goes.
// With --delivery signal or fd, or --proxy, the run must also show that the
// mode was exercised (hosts.hpp: check_modes_exercised). Records retired inside
// signal handlers are freed by this thread as it ticks (checks.hpp).
//
// Ordering: the stop flags are relaxed requests; joining each group of
// threads is what orders their work before the next step.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "checks.hpp"
#include "churn.hpp"
#include "crowd.hpp"
#include "faults.hpp"
#include "hosts.hpp"
#include "ops.hpp"
#include "options.hpp"
#include "report.hpp"
#include "run_state.hpp"
#include "starvation.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/domain.hpp"
#include "xcall/stall.hpp"

namespace xcall_torture {
namespace {

using clock = std::chrono::steady_clock;

/// A crash is a failure too: a call run late or twice touches a freed
/// record, and without a sanitizer that may be a SIGSEGV. Say so in the
/// verdict's words and exit 1 (async-signal-safe: write and _exit only).
/// Sanitizer builds keep their own handlers and reports.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define XCALL_TORTURE_CRASH_HANDLER 1
void on_fatal_signal(int signo) {
  const char* name = signo == SIGSEGV ? "SIGSEGV" : "SIGBUS";
  const char head[] = "\n!!! xcall-torture: fatal signal ";
  const char tail[] =
      " (a call run late or twice touches freed memory: see the failures above)\n"
      "End of test: FAILURE\n";
  (void)!write(STDOUT_FILENO, head, sizeof(head) - 1);
  (void)!write(STDOUT_FILENO, name, std::strlen(name));
  (void)!write(STDOUT_FILENO, tail, sizeof(tail) - 1);
  _exit(kExitFailure);
}
#endif

void install_crash_handler() {
#if defined(XCALL_TORTURE_CRASH_HANDLER)
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
#endif
}

/// The report's target host was runnable but not running for at least half
/// of the window the library measured: the machine starved it of a CPU (two
/// crowd runs at once on this 2-core VM leave runnable threads waiting
/// seconds: docs/torture.md). A lost wake-up leaves the host asleep, a
/// deadlock or livelock leaves it asleep or running: those stay failures.
bool host_starved(const xcall::stall_report& r) {
  return r.target_runnable_wait.count() >= 0 && r.target_sched_window.count() > 0 &&
         r.target_runnable_wait * 2 >= r.target_sched_window;
}

void on_stall(const xcall::stall_report& report) {
  if (report.unstuck) {
    console::error("!!! " + xcall::format_stall_report(report));
    return;
  }
  add(event::stall_reports);
  const std::string excuse = host_starved(report)
                                 ? "not a failure, the target's host was starved of a CPU: "
                                 : starvation_excuse(report.waited);
  if (!excuse.empty()) {
    add(event::stall_starved);
    console::error("!!! " + excuse + xcall::format_stall_report(report));
    return;
  }
  fail(check::stall, xcall::format_stall_report(report));
}

xcall::domain_options domain_options_for(const torture_options& o) {
  xcall::domain_options d;
  d.nr_cpus = o.cpus;
  d.start_threads = !o.attached;
  d.idle = o.idle;
  d.engine_kind = o.engine;
  d.stall_timeout = std::chrono::milliseconds(o.stall_timeout_ms);
  d.on_stall = on_stall;
  return d;
}

std::string describe_setup(const torture_options& o, const xcall::domain& dom) {
  char buf[512];
  const auto stall_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(dom.options().stall_timeout).count();
  char onoff[32] = "off";
  if (o.onoff_interval_s > 0) std::snprintf(onoff, sizeof(onoff), "every %g s", o.onoff_interval_s);
  char stutter[32] = "off";
  if (o.stutter_s > 0) std::snprintf(stutter, sizeof(stutter), "%g s", o.stutter_s);
  char hosts[64] = "owned threads";
  if (o.attached) {
    std::snprintf(hosts, sizeof(hosts), "attached hosts, delivery %s%s", delivery_name(o.delivery),
                  o.proxy ? ", proxy" : "");
  }
  std::snprintf(buf, sizeof(buf),
                "xcall-torture: %u CPUs (%s, idle %s), engine %s, %u invoker thread%s, %g s; "
                "hotplug %s, %u mask churners, stutter %s, handler delay up to %u us, "
                "stall timeout %lld ms%s",
                o.cpus, hosts, idle_name(o.idle), engine_name(o.engine), o.threads,
                o.threads == 1 ? "" : "s", o.duration_s, onoff, o.mask_churn, stutter,
                o.handler_delay_us, static_cast<long long>(stall_ms),
                stall_ms != static_cast<long long>(o.stall_timeout_ms)
                    ? " (from XCALL_STALL_TIMEOUT_MS)"
                    : "");
  std::string line = buf;
  if (o.nesting > 0) {
    std::snprintf(buf, sizeof(buf), "; nesting %u deep (a function acts 1 in %u)", o.nesting,
                  o.nest_one_in);
    line += buf;
  }
  if (o.crowd > 0) {
    const unsigned slots = outside_slots(o.cpus);
    std::snprintf(buf, sizeof(buf), "; crowd of %u outside callers (the library has %u slots)",
                  o.crowd_threads(slots), slots);
    line += buf;
  }
  if (o.attach_race) line += "; re-attaches raced";
  return line;
}

/// After the invokers stopped: every no-wait call must still run (and free
/// its record), every accepted async probe too. Waits a while for that.
void check_quiescence(const run_state& run) {
  const auto limit = std::chrono::seconds(10) + std::chrono::milliseconds(run.opt.stall_timeout_ms);
  const auto end = clock::now() + limit;
  totals t = sum_totals();
  auto settled = [&t] {
    return t.get(event::nowait_allocated) == t.get(event::nowait_freed) &&
           t.get(event::probe_sent) == t.get(event::probe_ran) &&
           t.get(event::crowd_sent) == t.get(event::crowd_ran);
  };
  while (!settled() && clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    reclaim_records();
    t = sum_totals();
  }
  const std::uint64_t lost = t.get(event::nowait_allocated) - t.get(event::nowait_freed);
  if (lost == 0) {
    pass(check::freed);
  } else {
    fail(check::freed, std::to_string(lost) + " of " +
                           std::to_string(t.get(event::nowait_allocated)) +
                           " no-wait calls never ran (their records were never freed)");
  }
  if (t.get(event::crowd_sent) == t.get(event::crowd_ran)) {
    pass(check::freed);
  } else {
    fail(check::freed, std::to_string(t.get(event::crowd_sent)) +
                           " no-wait crowd calls to online CPUs, " +
                           std::to_string(t.get(event::crowd_ran)) + " runs");
  }
  // Each report failed it already, but for those of a starved host.
  if (t.get(event::stall_reports) == t.get(event::stall_starved)) pass(check::stall);
  if (t.get(event::probe_sent) == t.get(event::probe_ran)) {
    pass(check::async);
  } else {
    fail(check::async, std::to_string(t.get(event::probe_sent)) +
                           " async probe descriptors accepted, " +
                           std::to_string(t.get(event::probe_ran)) + " runs");
  }
}

int run_torture(const torture_options& opt) {
  console::init();
  install_crash_handler();
  arm_faults(opt.faults);  // before the domain (and every thread) exists
  std::unique_ptr<xcall::domain> dom;
  try {
    dom = std::make_unique<xcall::domain>(domain_options_for(opt));
  } catch (const std::invalid_argument& e) {
    if (opt.engine == xcall::engine::classic) {
      std::fprintf(stderr, "xcall-torture: --engine classic is not available: %s\n", e.what());
    } else {
      std::fprintf(stderr, "xcall-torture: the domain rejected its options: %s\n", e.what());
    }
    return kExitBadOptions;
  }

  run_state run(opt, dom->nr_cpu_ids());
  run.dom = dom.get();
  run.online_count.store(opt.attached ? 0 : static_cast<int>(run.nr_cpus),
                         std::memory_order_relaxed);
  console::line("xcall-torture: seed " + std::to_string(opt.seed) +
                "; to repeat: " + opt.command_line());
  console::line(describe_setup(opt, *dom));
  for (const std::string& f : opt.faults) {
    console::line("xcall-torture: fault armed: " + f + " (this run is expected to FAIL)");
  }

  for (unsigned i = 0; i < opt.threads; ++i) {
    run.invokers.push_back(std::make_unique<invoker>(run, i, xcall::no_cpu));
  }
  std::vector<invoker*> host_invokers;
  if (opt.attached) {
    for (xcall::cpu_t c = 0; c < run.nr_cpus; ++c) {
      run.invokers.push_back(std::make_unique<invoker>(run, opt.threads + c, c));
      host_invokers.push_back(run.invokers.back().get());
    }
  }

  run.start = clock::now();
  reporter rep(run);
  std::mutex dom_lock;  // the watchdog looks at the domain only while it exists
  watchdog dog(run, [&](const std::string& why) {
    std::vector<xcall::cpu_stats> stats;
    if (dom_lock.try_lock()) {
      if (run.dom != nullptr) stats = run.dom->stats();
      dom_lock.unlock();
    }
    rep.final_report(stats, false, why);
  });

  attached_hosts hosts(run);
  if (opt.attached) hosts.start(host_invokers);
  churn churners(run);
  churners.start();
  crowd crowd_threads(run);
  crowd_threads.start();
  std::vector<std::thread> invoker_threads;
  for (unsigned i = 0; i < opt.threads; ++i) {
    invoker_threads.emplace_back([&run, i] {
      pthread_setname_np(pthread_self(), ("xt-inv/" + std::to_string(i)).substr(0, 15).c_str());
      run.invokers[i]->run_loop();
    });
  }

  const auto end = run.start + std::chrono::duration_cast<clock::duration>(
                                   std::chrono::duration<double>(opt.duration_s));
  while (clock::now() < end) {
    rep.tick();
    reclaim_records();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  activity& main_slot = new_activity("main");
  dog.stopping();
  run.stop_invokers.store(true, std::memory_order_relaxed);
  main_slot.begin("joining the invokers");
  for (std::thread& t : invoker_threads) t.join();
  main_slot.begin("joining the crowd");
  crowd_threads.join();
  run.stop_churn.store(true, std::memory_order_relaxed);
  main_slot.begin("joining the churn threads");
  churners.join();
  main_slot.begin("waiting for the last no-wait calls to run");
  check_quiescence(run);
  run.stop_hosts.store(true, std::memory_order_relaxed);
  main_slot.begin("joining the attached hosts");
  hosts.join();
  reclaim_records();  // every handler has run: the last retired records
  const std::vector<xcall::cpu_stats> stats = dom->stats();
  check_modes_exercised(run, stats);
  main_slot.begin("destroying the domain");
  {
    std::lock_guard<std::mutex> g(dom_lock);
    run.dom = nullptr;
    dom.reset();
  }
  verify_kept();  // every CPU has drained: calls whose predicate threw never ran
  main_slot.end();

  const bool success = !any_failure();
  rep.final_report(stats, success, "");
  return success ? kExitSuccess : kExitFailure;
}

}  // namespace
}  // namespace xcall_torture

int main(int argc, char** argv) {
  using namespace xcall_torture;
  const parse_result parsed = parse_options(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  try {
    return run_torture(*parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xcall-torture: %s\nEnd of test: FAILURE\n", e.what());
    return kExitFailure;
  }
}
