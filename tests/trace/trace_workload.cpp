// trace_workload.cpp — a known number of calls for the live trace test
// (live_probe_test.cpp), which attaches uprobes to this program's xcall
// probes and runs it as a child. It prints the domain's counters, summed
// over its CPUs, as "name value" lines, read just before the domain ends,
// so the test can compare each probe's events with the counter that marks
// the same place (docs/tracing.md).
//
//   trace_workload owned <percpu|classic> <n>
//       2 owned CPUs that sleep when idle: n waiting single calls to CPU 1,
//       n waiting many-calls to {0, 1}, then cpu_down(1) and cpu_up(1).
//   trace_workload attached <n>
//       4 attached CPUs: 0 signal delivery (never polls), 1 fd delivery (an
//       event loop), 2 proxy (parked in a blocking_region), 3 poll delivery
//       that stops polling for a while; n waiting calls to each of 0, 1 and
//       2, then one to 3 that outlasts a 10 ms stall timeout.
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;

std::atomic<unsigned> runs{0};

void count_run(void*) noexcept { runs.fetch_add(1, std::memory_order_relaxed); }

void check(std::error_code ec, const char* what) {
  if (ec) {
    std::fprintf(stderr, "trace_workload: %s: %s\n", what, ec.message().c_str());
    std::exit(2);
  }
}

void print_totals(const xcall::domain& d) {
  xcall::cpu_stats sum;
  for (const xcall::cpu_stats& s : d.stats()) {
    sum.calls_run += s.calls_run;
    sum.doorbells_rung += s.doorbells_rung;
    sum.doorbells_saved += s.doorbells_saved;
    sum.sleeps += s.sleeps;
    sum.stalls_reported += s.stalls_reported;
    sum.signals_sent += s.signals_sent;
    sum.proxy_runs += s.proxy_runs;
    sum.doorbell_fd_writes += s.doorbell_fd_writes;
  }
  std::printf("calls_run %llu\n", static_cast<unsigned long long>(sum.calls_run));
  std::printf("doorbells_rung %llu\n", static_cast<unsigned long long>(sum.doorbells_rung));
  std::printf("doorbells_saved %llu\n", static_cast<unsigned long long>(sum.doorbells_saved));
  std::printf("sleeps %llu\n", static_cast<unsigned long long>(sum.sleeps));
  std::printf("stalls_reported %llu\n", static_cast<unsigned long long>(sum.stalls_reported));
  std::printf("signals_sent %llu\n", static_cast<unsigned long long>(sum.signals_sent));
  std::printf("proxy_runs %llu\n", static_cast<unsigned long long>(sum.proxy_runs));
  std::printf("doorbell_fd_writes %llu\n", static_cast<unsigned long long>(sum.doorbell_fd_writes));
  std::printf("runs %u\n", runs.load());
  std::fflush(stdout);
}

int owned(xcall::engine kind, unsigned n) {
  xcall::domain d({.nr_cpus = 2, .idle = xcall::idle_mode::sleep, .engine_kind = kind});
  xcall::cpumask both(d.nr_cpu_ids());
  both.set(0);
  both.set(1);
  for (unsigned i = 0; i < n; ++i)
    check(d.call_function_single(1, count_run, nullptr, true), "single");
  for (unsigned i = 0; i < n; ++i)
    check(d.call_function_many(both, count_run, nullptr, true), "many");
  check(d.cpu_down(1), "cpu_down");
  check(d.cpu_up(1), "cpu_up");
  print_totals(d);
  return 0;
}

/// An attached host: attaches `cpu`, says so, runs `body` until `stop`.
template <class Body>
std::thread host(xcall::domain& d, xcall::cpu_t cpu, xcall::attach_options how,
                 std::atomic<bool>& stop, Body body) {
  std::atomic<bool> up{false};
  std::thread t([&d, cpu, how, &stop, &up, body] {
    xcall::cpu_attachment att = d.attach(cpu, how);
    up.store(true, std::memory_order_release);
    body(att, stop);
  });
  while (!up.load(std::memory_order_acquire)) std::this_thread::yield();
  return t;
}

int attached(unsigned n) {
  xcall::domain d({.nr_cpus = 4,
                   .start_threads = false,
                   .stall_timeout = 10ms,
                   .on_stall = [](const xcall::stall_report&) {}});
  std::atomic<bool> stop{false};
  std::atomic<bool> parked{false};
  std::atomic<bool> deaf{true};
  std::vector<std::thread> hosts;
  // CPU 0: runs its own code and never polls; reached by the doorbell signal.
  hosts.push_back(host(d, 0, {xcall::delivery_mode::signal, false}, stop,
                       [](xcall::cpu_attachment&, std::atomic<bool>& s) {
                         while (!s.load(std::memory_order_acquire)) {
                         }
                       }));
  // CPU 1: an event loop blocked in poll() on its doorbell fd.
  hosts.push_back(host(d, 1, {xcall::delivery_mode::fd, false}, stop,
                       [](xcall::cpu_attachment& att, std::atomic<bool>& s) {
                         while (!s.load(std::memory_order_acquire)) {
                           xcall::loop_wait w;
                           pollfd p{att.doorbell_fd(), POLLIN, 0};
                           if (w.may_block()) (void)::poll(&p, 1, 5);
                         }
                       }));
  // CPU 2: parked in a blocking_region; its callers run its calls.
  hosts.push_back(host(d, 2, {xcall::delivery_mode::poll, true}, stop,
                       [&parked](xcall::cpu_attachment&, std::atomic<bool>& s) {
                         xcall::blocking_region region;
                         parked.store(true, std::memory_order_release);
                         while (!s.load(std::memory_order_acquire))
                           std::this_thread::sleep_for(1ms);
                       }));
  // CPU 3: polls, except while `deaf`: a call to it stalls.
  hosts.push_back(host(d, 3, {xcall::delivery_mode::poll, false}, stop,
                       [&deaf](xcall::cpu_attachment&, std::atomic<bool>& s) {
                         while (!s.load(std::memory_order_acquire)) {
                           if (!deaf.load(std::memory_order_acquire)) xcall::poll();
                         }
                       }));
  while (!parked.load(std::memory_order_acquire)) std::this_thread::yield();
  for (unsigned i = 0; i < n; ++i) {
    for (xcall::cpu_t cpu = 0; cpu < 3; ++cpu) {
      check(d.call_function_single(cpu, count_run, nullptr, true), "single");
    }
  }
  std::thread waker([&deaf] {
    std::this_thread::sleep_for(60ms);  // several stall timeouts
    deaf.store(false, std::memory_order_release);
  });
  check(d.call_function_single(3, count_run, nullptr, true), "single to a deaf CPU");
  waker.join();
  print_totals(d);
  stop.store(true, std::memory_order_release);
  for (std::thread& t : hosts) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "owned") == 0) {
    const bool classic = std::strcmp(argv[2], "classic") == 0;
    return owned(classic ? xcall::engine::classic : xcall::engine::percpu,
                 static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)));
  }
  if (argc == 3 && std::strcmp(argv[1], "attached") == 0) {
    return attached(static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10)));
  }
  std::fprintf(stderr, "usage: trace_workload owned <percpu|classic> <n> | attached <n>\n");
  return 2;
}
