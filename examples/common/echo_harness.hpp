// echo_harness.hpp — what examples/epoll and examples/io_uring share: the
// echo protocol, the client threads, the control thread and its checks. Each
// example brings only its worker loop, the part to copy: a thread that hosts
// an xcall CPU attached with delivery_mode::fd and blocks in its own kernel
// wait (epoll_wait, io_uring_submit_and_wait) between events.
//
// The program: N workers, each a thread that attaches CPU i of a domain and
// runs an echo server on 127.0.0.1 (an ephemeral port) in its own event loop.
// A client thread per worker opens a few connections to it and sends bursts
// of fixed-size requests, one at a time, with pauses between the bursts (so
// the worker really blocks between events). The control thread (main)
//   - every --interval-us: builds a cpumask of the "busy" workers (those that
//     served an echo in the last 5 ms, from the time each one reports) and
//     calls call_function_many(busy, note, wait=true);
//   - every 50 ms: on_each_cpu(collect, wait=true) reads and resets each
//     worker's echo counter (its own, plain data);
//   - every 200 ms: on_each_cpu(set_generation, wait=true) changes the
//     generation each worker puts in front of its echoes (a setting);
//   - at the end: stops the clients, collects once more, and stops the
//     workers with on_each_cpu(stop_worker, wait=true), which sets each
//     worker's stop flag on its own thread; no worker stays blocked.
// Every call checks that its function ran exactly once on each target CPU
// and nowhere else, on the thread that hosts that CPU (this_cpu() and the
// thread id). The collected echo counts must add up to the echoes the clients
// received. The program prints what it measured and exits 1 on any failure.
//
// Ordering: a worker's plain data (stop, generation, echoes, ...) is touched
// only on the worker's thread: by its loop and by the functions the control
// thread sends to its CPU, which run there (at the end of a loop_wait). With
// wait, what those functions write happens-before the call returns
// (guarantee 4), which is how the control thread reads the collected
// counters. Flags between threads are release stores read by acquire loads;
// everything else is read after join().
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "xcall/xcall.hpp"

namespace echo_harness {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kBusyWindow = 5ms;         // served an echo this recently: busy
constexpr auto kCollectEvery = 50ms;      // on_each_cpu(collect)
constexpr auto kGenerationEvery = 200ms;  // on_each_cpu(set_generation)

struct options {
  unsigned workers = 2;
  double seconds = 3.0;
  unsigned connections = 2;     // per worker
  unsigned interval_us = 1000;  // between two call_function_many calls
};

inline void add_options(CLI::App& app, options& o) {
  app.add_option("--workers", o.workers, "worker threads, one CPU each")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--seconds", o.seconds, "how long the clients and the control thread run")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--connections", o.connections, "TCP connections per worker")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--interval-us", o.interval_us,
                 "microseconds between the control thread's call_function_many calls")
      ->capture_default_str()
      ->check(CLI::Range(10u, 1000000u));
}

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// The wire protocol: fixed-size messages in native byte order (both ends are
// this process). A client sends a request and waits for its reply before it
// sends the next one on that connection.

struct request {
  std::uint64_t seq = 0;
  std::uint64_t payload = 0;
};
struct reply {
  std::uint64_t generation = 0;  // the worker's setting when it echoed
  request echoed;
};

// ---------------------------------------------------------------------------
// A worker: what its loop and the control thread's functions share.

enum worker_status : int { kStarting, kServing, kFailed };

struct alignas(64) worker_state {
  xcall::cpu_t cpu = 0;
  // Set by the worker thread before it attaches; compared by the functions
  // that run on its CPU.
  std::thread::id thread;

  // The worker's own data: touched only on its thread, by its loop and by the
  // functions the control thread sends to its CPU. Plain: no lock, no atomic.
  bool stop = false;                // set by stop_worker: leave the loop
  std::uint64_t generation = 0;     // set by set_generation: put in every reply
  std::uint64_t echoes = 0;         // replies sent since the last collect
  std::uint64_t blocked_waits = 0;  // kernel waits entered with may_block(): timeout -1
  std::uint64_t zero_waits = 0;     // ... without (calls already queued): timeout 0
  std::uint64_t errors = 0;         // I/O errors; read after join()

  // Shared with the other threads.
  std::atomic<int> status{kStarting};         // kServing: attached, port set
  std::atomic<std::uint16_t> port{0};         // the echo server's port
  std::atomic<std::int64_t> last_echo_ns{0};  // the busy report (now_ns())
};

/// A listening TCP socket on 127.0.0.1, port chosen by the kernel (`flags`:
/// SOCK_NONBLOCK or 0). Returns the fd, or -1 with errno set.
inline int listen_on_loopback(int flags, std::uint16_t& port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  port = ntohs(addr.sin_port);
  return fd;
}

/// The worker is attached and listening: the clients may connect.
inline void worker_ready(worker_state& w, std::uint16_t port) {
  w.port.store(port, std::memory_order_relaxed);
  w.status.store(kServing, std::memory_order_release);  // pairs with run()'s acquire
}
/// The worker could not start (before or instead of worker_ready).
inline void worker_failed(worker_state& w, const char* what, int err) {
  std::fprintf(stderr, "worker %u: %s: %s\n", w.cpu, what, std::strerror(err));
  w.status.store(kFailed, std::memory_order_release);
}
/// The reply to a complete request, stamped with the worker's setting.
inline reply make_reply(const worker_state& w, const request& r) { return reply{w.generation, r}; }
/// A reply went out in full: count it and report "busy".
inline void echo_sent(worker_state& w) {
  ++w.echoes;
  w.last_echo_ns.store(now_ns(), std::memory_order_relaxed);
}

using worker_main = void (*)(xcall::domain&, worker_state&);

// ---------------------------------------------------------------------------
// The clients: one thread per worker, blocking sockets.

struct client_result {
  std::uint64_t echoes = 0;  // replies received and checked
  std::uint64_t bursts = 0;
  std::uint64_t errors = 0;
};

inline bool write_all(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t r = send(fd, c, n, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}
inline bool read_all(int fd, void* p, std::size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t r = recv(fd, c, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;  // EOF, error, or SO_RCVTIMEO: the worker is gone
    c += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

inline void client(std::uint16_t port, unsigned connections, std::uint64_t seed,
                   const std::atomic<bool>& stop, const std::atomic<std::uint64_t>& generation_set,
                   client_result& out) {
  auto fail = [&out](const char* what) {
    if (out.errors++ == 0) std::fprintf(stderr, "client: %s: %s\n", what, std::strerror(errno));
  };
  struct fd_list {
    std::vector<int> fds;
    ~fd_list() {
      for (int fd : fds) close(fd);
    }
  } sockets;
  std::vector<int>& fds = sockets.fds;
  for (unsigned i = 0; i < connections; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail("socket");
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const int one = 1;
    const timeval timeout{10, 0};  // a broken worker fails the client, not hangs it
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) != 0) {
      fail("connect");
      break;
    }
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> ms(5, 40);
  std::uint64_t seq = 0;
  std::uint64_t last_generation = 0;
  while (out.errors == 0 && !stop.load(std::memory_order_relaxed)) {
    ++out.bursts;
    const auto burst_end = clock_type::now() + std::chrono::milliseconds(ms(rng));
    while (out.errors == 0 && clock_type::now() < burst_end) {
      for (int fd : fds) {
        const request req{++seq, rng()};
        reply rep;
        if (!write_all(fd, &req, sizeof req)) return fail("send");
        if (!read_all(fd, &rep, sizeof rep)) return fail("recv");
        if (rep.echoed.seq != req.seq || rep.echoed.payload != req.payload) {
          ++out.errors;
          std::fprintf(stderr, "client: the reply does not echo the request\n");
          break;
        }
        // The generation only grows, and never runs ahead of the control
        // thread, which publishes it before it sends it to the workers.
        if (rep.generation < last_generation ||
            rep.generation > generation_set.load(std::memory_order_acquire)) {
          ++out.errors;
          std::fprintf(stderr, "client: generation %" PRIu64 " after %" PRIu64 "\n", rep.generation,
                       last_generation);
          break;
        }
        last_generation = rep.generation;
        ++out.echoes;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));  // idle: the worker blocks
  }
}  // closes the connections: each worker reads EOF and closes its end

// ---------------------------------------------------------------------------
// The control thread's calls. One `call` record per call: the functions note
// where they ran, and the control thread checks it once the call returned.

struct worker_report {
  std::uint64_t echoes = 0;
  std::uint64_t generation = 0;
  std::uint64_t blocked_waits = 0;
  std::uint64_t zero_waits = 0;
};

struct call {
  call(worker_state* w, unsigned n) : workers(w), nr(n), runs(n), reports(n) {}
  worker_state* workers;
  unsigned nr;
  std::vector<std::atomic<unsigned>> runs;  // per CPU: how often the function ran there
  std::atomic<unsigned> wrong_thread{0};    // ran as a CPU, but not on its worker's thread
  std::atomic<unsigned> misrouted{0};       // ran where this_cpu() names no worker
  std::uint64_t generation = 0;             // set_generation's argument
  std::vector<worker_report> reports;       // collect's result, one slot per CPU

  void reset() {
    for (auto& r : runs) r.store(0, std::memory_order_relaxed);
    wrong_thread.store(0, std::memory_order_relaxed);
    misrouted.store(0, std::memory_order_relaxed);
    for (auto& r : reports) r = {};  // a CPU that does not run collect reports nothing
  }
};

/// In a function run by a call: notes the run, and returns the worker whose
/// CPU and thread it runs on, or nullptr (then it must touch nothing).
inline worker_state* arrive(call& c) {
  const xcall::cpu_t cpu = xcall::this_cpu();
  if (cpu >= c.nr) {
    c.misrouted.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  c.runs[cpu].fetch_add(1, std::memory_order_relaxed);
  worker_state& w = c.workers[cpu];
  if (w.thread != std::this_thread::get_id()) {
    c.wrong_thread.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  return &w;
}

// The functions. They run on the worker's thread, at the end of a loop_wait.
inline void note(void* info) noexcept { (void)arrive(*static_cast<call*>(info)); }
inline void collect(void* info) noexcept {
  auto& c = *static_cast<call*>(info);
  if (worker_state* w = arrive(c)) {
    c.reports[w->cpu] = {w->echoes, w->generation, w->blocked_waits, w->zero_waits};
    w->echoes = 0;  // read and reset: every echo is collected exactly once
  }
}
inline void set_generation(void* info) noexcept {
  auto& c = *static_cast<call*>(info);
  if (worker_state* w = arrive(c)) w->generation = c.generation;
}
inline void stop_worker(void* info) noexcept {
  if (worker_state* w = arrive(*static_cast<call*>(info))) w->stop = true;
}

struct call_stats {
  explicit call_stats(const char* n) : name(n) {}
  const char* name;
  std::uint64_t calls = 0;
  std::uint64_t answered = 0;  // returned 0, every target ran once, on its thread
  std::uint64_t targets = 0;
  std::uint64_t empty = 0;  // no target at all (not in the latency samples)
  std::vector<double> us;   // latency of the calls that had a target

  double percentile(double q) {
    if (us.empty()) return 0.0;
    std::sort(us.begin(), us.end());
    return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1) + 0.5)];
  }
};

struct control {
  control(xcall::domain& d, worker_state* w, unsigned n)
      : dom(d), workers(w), nr(n), record(w, n), all(n), served(n) {
    all.set_all();
  }
  xcall::domain& dom;
  worker_state* workers;
  unsigned nr;
  call record;
  xcall::cpumask all;  // every worker: the targets of on_each_cpu
  std::uint64_t failures = 0;
  std::uint64_t collected = 0;        // echoes, summed over every collect
  std::vector<std::uint64_t> served;  // ... per worker
  std::vector<worker_report> last_reports;

  /// Runs one call through `send` (which returns its error code) and checks
  /// that it ran exactly once on every CPU of `targets` and nowhere else.
  template <class Send>
  void run(call_stats& s, const xcall::cpumask& targets, Send send) {
    record.reset();
    const auto t0 = clock_type::now();
    const std::error_code ec = send();
    const auto t1 = clock_type::now();
    ++s.calls;
    const bool tell = failures < 10;  // the first failures only, not a flood
    bool ok = !ec;
    if (ec && tell) std::fprintf(stderr, "%s: %s\n", s.name, ec.message().c_str());
    unsigned n = 0;
    for (xcall::cpu_t c = 0; c < nr; ++c) {
      const unsigned expected = targets.test(c) ? 1 : 0;
      const unsigned runs = record.runs[c].load(std::memory_order_relaxed);
      n += expected;
      if (runs != expected) {
        if (tell) {
          std::fprintf(stderr, "%s: ran %u times on CPU %u, expected %u\n", s.name, runs, c,
                       expected);
        }
        ok = false;
      }
    }
    if (const unsigned bad = record.wrong_thread.load(std::memory_order_relaxed); bad != 0) {
      if (tell) {
        std::fprintf(stderr, "%s: ran %u times on a thread other than its CPU's worker\n", s.name,
                     bad);
      }
      ok = false;
    }
    if (const unsigned bad = record.misrouted.load(std::memory_order_relaxed); bad != 0) {
      if (tell) std::fprintf(stderr, "%s: ran %u times outside the workers' CPUs\n", s.name, bad);
      ok = false;
    }
    s.targets += n;
    if (n == 0) {
      ++s.empty;
    } else {
      s.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    if (ok) {
      ++s.answered;
    } else {
      ++failures;
    }
  }

  void on_each(call_stats& s, xcall::call_func_t f) {
    run(s, all, [&] { return dom.on_each_cpu(f, &record, true); });
  }
  void collect_all(call_stats& s) {
    on_each(s, collect);
    for (unsigned i = 0; i < nr; ++i) {
      collected += record.reports[i].echoes;
      served[i] += record.reports[i].echoes;
    }
    last_reports = record.reports;
  }
};

// ---------------------------------------------------------------------------
// The program.

inline double per_call(std::uint64_t n, std::uint64_t calls) {
  return calls ? static_cast<double>(n) / static_cast<double>(calls) : 0.0;
}
inline void print_calls(call_stats& s) {
  std::printf("  %-26s %7" PRIu64 " calls, %7" PRIu64
              " answered; latency p50 %8.1f us  p99 %8.1f us\n",
              s.name, s.calls, s.answered, s.percentile(0.50), s.percentile(0.99));
}

/// Runs the program with `loop` as every worker's thread; `name` and `wait`
/// (the kernel wait the loop blocks in) go into the header. Returns the exit
/// code: 0 when every check passed, 1 otherwise.
inline int run(const options& o, const char* name, const char* wait, worker_main loop) {
  const unsigned n = o.workers;
  std::printf("xcall %s: workers blocked in %s, reached by delivery_mode::fd\n", name, wait);
  std::printf(
      "  %u workers, each attached to its own CPU, serving %u loopback TCP connections\n"
      "  from its own event loop; a client thread per worker sends bursts of echo\n"
      "  requests with pauses in between. The control thread calls call_function_many\n"
      "  on the busy workers every %u us, collects counters with on_each_cpu every %lld ms,\n"
      "  changes the echo generation every %lld ms and stops the workers with a call.\n"
      "  Check: every call ran exactly once on each target CPU, on its worker's thread.\n",
      n, o.connections, o.interval_us, static_cast<long long>(kCollectEvery.count()),
      static_cast<long long>(kGenerationEvery.count()));
  std::fflush(stdout);

  std::atomic<unsigned> stalls{0};
  xcall::domain_options opt;
  opt.nr_cpus = n;
  opt.start_threads = false;  // every CPU comes online when its worker attaches
  opt.stall_timeout = 2s;
  opt.on_stall = [&stalls](const xcall::stall_report& r) {
    std::fprintf(stderr, "%s\n", xcall::format_stall_report(r).c_str());
    if (!r.unstuck) stalls.fetch_add(1, std::memory_order_relaxed);
  };
  xcall::domain dom(opt);

  auto workers = std::make_unique<worker_state[]>(n);
  std::vector<std::thread> worker_threads;
  for (unsigned i = 0; i < n; ++i) {
    workers[i].cpu = i;
    worker_threads.emplace_back([&dom, &w = workers[i], loop] {
      try {
        loop(dom, w);
      } catch (const std::exception& e) {  // attach() throws on misuse only
        std::fprintf(stderr, "worker %u: %s\n", w.cpu, e.what());
        w.status.store(kFailed, std::memory_order_release);
      }
    });
  }
  bool started = true;
  for (unsigned i = 0; i < n; ++i) {
    int s;
    while ((s = workers[i].status.load(std::memory_order_acquire)) == kStarting) {
      std::this_thread::sleep_for(1ms);
    }
    started = started && s == kServing;
  }

  control ctl(dom, workers.get(), n);
  call_stats many("call_function_many(busy)"), collects("on_each_cpu(collect)"),
      generations("on_each_cpu(set_generation)"), stops("on_each_cpu(stop_worker)");
  std::uint64_t mask_changes = 0;
  std::vector<client_result> clients(n);
  double elapsed = 0;
  if (!started) {
    ++ctl.failures;
  } else {
    std::atomic<bool> stop_clients{false};
    std::atomic<std::uint64_t> generation_set{0};
    std::vector<std::thread> client_threads;
    for (unsigned i = 0; i < n; ++i) {
      client_threads.emplace_back(client, workers[i].port.load(std::memory_order_relaxed),
                                  o.connections, 0x9e3779b97f4a7c15ull * (i + 1),
                                  std::cref(stop_clients), std::cref(generation_set),
                                  std::ref(clients[i]));
    }

    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(o.seconds));
    const auto interval = std::chrono::microseconds(o.interval_us);
    auto next_call = start, next_collect = start + kCollectEvery,
         next_generation = start + kGenerationEvery;
    xcall::cpumask busy(n), previous(n);
    while (clock_type::now() < end) {
      std::this_thread::sleep_until(next_call);
      next_call += interval;
      const auto now = clock_type::now();
      if (next_call < now) next_call = now;  // fell behind: no catch-up burst

      // The busy mask, from what the workers report.
      const std::int64_t now_stamp = now_ns();
      for (unsigned i = 0; i < n; ++i) {
        const std::int64_t last = workers[i].last_echo_ns.load(std::memory_order_relaxed);
        if (last != 0 && now_stamp - last < std::chrono::nanoseconds(kBusyWindow).count()) {
          busy.set(i);
        } else {
          busy.reset(i);
        }
      }
      for (unsigned i = 0; i < n; ++i) mask_changes += busy.test(i) != previous.test(i);
      previous = busy;
      ctl.run(many, busy, [&] { return dom.call_function_many(busy, note, &ctl.record, true); });

      if (now >= next_collect) {
        next_collect += kCollectEvery;
        ctl.collect_all(collects);
      }
      if (now >= next_generation) {
        next_generation += kGenerationEvery;
        ctl.record.generation = generation_set.load(std::memory_order_relaxed) + 1;
        // Published before it is sent: no reply may carry a newer one.
        generation_set.store(ctl.record.generation, std::memory_order_release);
        ctl.on_each(generations, set_generation);
      }
    }
    elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    stop_clients.store(true, std::memory_order_relaxed);
    for (std::thread& t : client_threads) t.join();

    // The last collect: the clients are done, so every echo is counted now.
    ctl.collect_all(collects);
    for (unsigned i = 0; i < n; ++i) {
      if (ctl.last_reports[i].generation != generation_set.load(std::memory_order_relaxed)) {
        std::fprintf(stderr, "worker %u: generation %" PRIu64 ", expected %" PRIu64 "\n", i,
                     ctl.last_reports[i].generation, generation_set.load());
        ++ctl.failures;
      }
    }
  }
  // Every worker leaves its loop through this call, on its own thread, then
  // ends its attachment there. A worker that already left is offline and
  // skipped: the mask is what was online.
  xcall::cpumask online(n);
  online = dom.online_mask();
  ctl.run(stops, online, [&] { return dom.on_each_cpu(stop_worker, &ctl.record, true); });
  for (std::thread& t : worker_threads) t.join();
  const std::vector<xcall::cpu_stats> stats = dom.stats();

  // Totals and the remaining checks.
  std::uint64_t received = 0, bursts = 0, client_errors = 0, worker_errors = 0, fd_writes = 0;
  for (unsigned i = 0; i < n; ++i) {
    received += clients[i].echoes;
    bursts += clients[i].bursts;
    client_errors += clients[i].errors;
    worker_errors += workers[i].errors;
    fd_writes += stats[i].doorbell_fd_writes;
  }
  std::uint64_t failures = ctl.failures + client_errors + worker_errors + stalls.load();
  if (started && ctl.collected != received) {
    std::fprintf(stderr,
                 "echoes: the workers counted %" PRIu64 ", the clients received %" PRIu64 "\n",
                 ctl.collected, received);
    ++failures;
  }

  std::printf("\nresults after %.2f s\n", elapsed);
  print_calls(many);
  std::printf("  %-26s %7.2f workers per call; %" PRIu64
              " calls found none busy; the mask changed %" PRIu64 " times\n",
              "", per_call(many.targets, many.calls), many.empty, mask_changes);
  print_calls(collects);
  print_calls(generations);
  print_calls(stops);
  std::printf("  %-26s %7" PRIu64 " served by the workers, %" PRIu64
              " received by the clients, in %" PRIu64 " bursts\n",
              "echoes", ctl.collected, received, bursts);
  std::printf("  %-26s %7" PRIu64 " (domain::stats: a call found the worker blocked)\n",
              "doorbell fd writes", fd_writes);
  std::printf("  %-26s %7" PRIu64 " (client %" PRIu64 ", worker %" PRIu64 ", stall %u)\n", "errors",
              client_errors + worker_errors + stalls.load(), client_errors, worker_errors,
              stalls.load());

  std::printf("\nper worker: this program's counters, then xcall's (domain::stats)\n");
  std::printf("  %4s %10s %14s %14s | %10s %10s\n", "cpu", "echoes", "blocking waits",
              "zero timeouts", "calls run", "fd writes");
  for (unsigned i = 0; i < n; ++i) {
    // The last collect's counters; the waits of the final stop are not in them.
    const worker_report r = i < ctl.last_reports.size() ? ctl.last_reports[i] : worker_report{};
    std::printf("  %4u %10" PRIu64 " %14" PRIu64 " %14" PRIu64 " | %10" PRIu64 " %10" PRIu64 "\n",
                i, ctl.served[i], r.blocked_waits, r.zero_waits, stats[i].calls_run,
                stats[i].doorbell_fd_writes);
  }
  if (failures == 0) {
    std::printf("\nOK: every call ran exactly once on each target CPU, on its worker's thread\n");
  } else {
    std::printf("\nFAILURE: %" PRIu64 " failed checks\n", failures);
  }
  std::fflush(stdout);
  return failures == 0 ? 0 : 1;
}

}  // namespace echo_harness
