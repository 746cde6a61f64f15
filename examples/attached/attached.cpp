// attached — three ways a cross-call reaches an application thread that hosts
// a CPU (docs/attached-threads.md):
//   1. signal delivery reaches a host busy in its own computation;
//   2. an irq_guard on that host defers the call until the guard ends;
//   3. a host parked in read() on a pipe, attached with proxy, is served by
//      the waiting caller itself, and its read() is not interrupted.
// Every step is checked; the program exits 1 if any check fails.
//
// Ordering: each flag between threads is a release store read by an acquire
// load on the other side; plain results are read after join(), or after the
// waiting call that wrote them returned (guarantee 4).
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "xcall/xcall.hpp"

namespace {

constexpr auto acq = std::memory_order_acquire;
constexpr auto rel = std::memory_order_release;

int failures = 0;
void check(bool ok, const char* what) {
  std::printf("  %s  %s\n", ok ? "ok  " : "FAIL", what);
  failures += ok ? 0 : 1;
}

int pipe_fd[2];  // host B reads [0]; main writes [1]
void poke() {    // one byte for host B's read()
  if (write(pipe_fd[1], "x", 1) != 1) std::abort();
}
std::atomic<bool> stalled{false};  // the watchdog fired: give up, do not hang

struct shared {
  std::atomic<bool> busy{false};                          // host A is in its computation (no poll)
  std::atomic<bool> next{false};                          // main: step 1 is done
  std::atomic<bool> guarded{false};                       // host A is inside its irq_guard
  std::atomic<bool> sent{false};                          // main: the step 2 call is queued
  bool ran_inside_guard = true, ran_after_guard = false;  // host A's findings
  std::atomic<bool> parked{false};                        // host B is inside its blocking_region
  std::atomic<bool> read_done{false};
  xcall::cpu_t cpu_in_region = 0;
  ssize_t read_result = -1;
  int read_errno = 0;
};

// Sent to CPU 0, which has signal delivery: it may run inside the signal
// handler, so it is async-signal-safe (lock-free atomics only: no malloc, no
// locks, no stdio).
struct note {
  std::atomic<bool>* host_busy;  // the host's flag, sampled when we run
  std::atomic<xcall::cpu_t> cpu{xcall::no_cpu};
  std::atomic<bool> busy_seen{false};
  std::atomic<bool> ran{false};
};
void take_note(void* p) noexcept {
  auto* n = static_cast<note*>(p);
  n->cpu.store(xcall::this_cpu(), std::memory_order_relaxed);
  n->busy_seen.store(n->host_busy->load(std::memory_order_relaxed), std::memory_order_relaxed);
  n->ran.store(true, rel);  // pairs with host A's acquire loads of `ran`
}

std::uint64_t work(std::uint64_t x) { return x * 6364136223846793005u + 1442695040888963407u; }

// Host A: CPU 0, signal delivery, never polls.
void busy_host(xcall::domain& dom, shared& s, note& step2) {
  xcall::cpu_attachment cpu = dom.attach(0, {.delivery = xcall::delivery_mode::signal});
  volatile std::uint64_t x = 1;
  s.busy.store(true, rel);  // pairs with main's acquire: start step 1
  while (!s.next.load(acq) && !stalled.load(acq)) x = work(x);
  s.busy.store(false, std::memory_order_relaxed);  // sampled by take_note: same thread
  {
    xcall::irq_guard guard;  // soft mask: no sigprocmask, the handler defers
    s.guarded.store(true, rel);
    while (!s.sent.load(acq) && !stalled.load(acq)) x = work(x);
    // The call is queued and its signal pending on this thread (main's tgkill
    // returned before `sent`); any system call's return delivers it, here,
    // inside the guard: the handler must leave the call queued.
    sched_yield();
    s.ran_inside_guard = step2.ran.load(acq);
  }  // the end of the last guard runs what the handler deferred
  s.ran_after_guard = step2.ran.load(acq);
}  // detach: CPU 0 goes offline

// Host B: CPU 1, signal delivery and proxy, parked in read().
void parked_host(xcall::domain& dom, shared& s) {
  xcall::cpu_attachment cpu =
      dom.attach(1, {.delivery = xcall::delivery_mode::signal, .proxy = true});
  char byte = 0;
  {
    xcall::blocking_region region;  // read() touches none of CPU 1's state
    s.cpu_in_region = xcall::this_cpu();
    s.parked.store(true, rel);  // pairs with main's acquire: start step 3
    s.read_result = read(pipe_fd[0], &byte, 1);
    s.read_errno = errno;
    s.read_done.store(true, rel);
  }  // leaving waits for a proxy still running CPU 1's calls
}

}  // namespace

int main() {
  if (pipe(pipe_fd) != 0) return 2;
  shared s;
  note step1, step2;
  step1.host_busy = step2.host_busy = &s.busy;

  xcall::domain_options opt{.nr_cpus = 2, .start_threads = false};
  opt.stall_timeout = std::chrono::seconds(2);
  opt.on_stall = [](const xcall::stall_report& r) {  // a broken build fails, not hangs
    std::fprintf(stderr, "%s\n", xcall::format_stall_report(r).c_str());
    if (!r.unstuck && !stalled.exchange(true, std::memory_order_acq_rel)) {
      poke();  // release host B's read() too
    }
  };
  xcall::domain dom(opt);

  std::printf("1. signal delivery reaches a host busy in its own code\n");
  std::thread a(busy_host, std::ref(dom), std::ref(s), std::ref(step2));
  while (!s.busy.load(acq)) std::this_thread::yield();
  std::error_code ec = dom.call_function_single(0, take_note, &step1, /*wait=*/true);
  check(!ec && step1.ran.load(acq) && step1.cpu.load(acq) == 0, "the call ran on CPU 0");
  check(step1.busy_seen.load(acq), "...while its host was computing (it never polls)");
  check(dom.stats()[0].signal_runs >= 1, "...from the doorbell signal's handler");
  s.next.store(true, rel);

  std::printf("2. an irq_guard defers the call, without a system call of its own\n");
  while (!s.guarded.load(acq)) std::this_thread::yield();
  // No wait: a waiting call would return only once the guard ended, and the
  // host must learn that the call (and its signal) went out while it is in it.
  ec = dom.call_function_single(0, take_note, &step2, /*wait=*/false);
  s.sent.store(true, rel);  // pairs with host A's acquire
  a.join();
  check(!ec && !s.ran_inside_guard, "the call did not run inside the guard");
  check(s.ran_after_guard, "...and ran when the guard ended");
  check(dom.stats()[0].signals_deferred >= 1, "...the handler deferred it");

  std::printf("3. a host parked in read() is served by the waiting caller (proxy)\n");
  std::thread b(parked_host, std::ref(dom), std::ref(s));
  while (!s.parked.load(acq)) std::this_thread::yield();
  std::thread::id ran_on;
  xcall::cpu_t ran_as = xcall::no_cpu;
  bool host_in_read = false;
  ec = dom.call_function_single(1, [&] {  // normal context here: anything goes
    ran_on = std::this_thread::get_id();
    ran_as = xcall::this_cpu();
    host_in_read = !s.read_done.load(acq);
  });
  poke();  // now let host B's read() return
  b.join();
  check(!ec && ran_as == 1 && ran_on == std::this_thread::get_id(),
        "the caller ran the call itself, as CPU 1");
  check(host_in_read, "...while host B was still blocked in read()");
  check(s.cpu_in_region == xcall::no_cpu, "inside the region host B is an outside thread");
  check(dom.stats()[1].proxy_runs >= 1, "proxy_runs counted it");
  check(dom.stats()[1].signals_sent == 0, "a parked host with proxy is not signalled...");
  check(s.read_result == 1 && !stalled.load(acq), "...so read() returned its byte, no EINTR");
  if (s.read_result != 1) std::printf("  read(): %zd, errno %d\n", s.read_result, s.read_errno);

  std::printf("\n%s", xcall::format_stats(dom.stats()).c_str());
  std::printf("\n%s\n", failures == 0 ? "OK: every check passed" : "FAILURE");
  return failures == 0 ? 0 : 1;
}
