// hosts.cpp — the attached hosts' loop, attach and detach, and the check
// that the delivery modes were exercised.
//
// Ordering: attach/detach are transitions: online_tracker begin/end around
// them, under the hotplug lock taken for writing (by a host: while polling,
// since a reader's call may be waiting for this very CPU). ready_ is a
// release/acquire count: start() returns after every attach happened. The
// hosts' marks (host_marks.hpp) bracket the guard and the region they name.
// The stop fd (--delivery fd) is written after stop_hosts is set: a host it
// wakes sees the flag (join() orders everything after).
#include "hosts.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "fd_loop.hpp"
#include "ops.hpp"
#include "report.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/cpu.hpp"

namespace xcall_torture {
namespace {

using clock = std::chrono::steady_clock;

constexpr unsigned kCallOneIn = 8;             // loop turns per call of the host's own
constexpr unsigned kSleepOneIn = 8;            // safe points that are an idle_wait (else poll)
constexpr unsigned kSignalSafePointOneIn = 4;  // signal delivery: turns per safe point
constexpr unsigned kGuardOneIn = 4;            // signal delivery: computations inside an irq_guard
constexpr unsigned kGuardedBlockOneIn = 8;     // blocking waits made inside an irq_guard

/// "Application work" between safe points.
void work(rng& r) {
  volatile std::uint64_t x = r.next();
  for (unsigned i = 0; i < 200; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
}

/// Busy computation for `us` microseconds that never calls into xcall.
void spin_for(rng& r, std::uint64_t us) {
  volatile std::uint64_t x = r.next();
  const auto end = clock::now() + std::chrono::microseconds(us);
  do {
    for (unsigned i = 0; i < 64; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  } while (clock::now() < end);
}

/// Blocks in the kernel for `us` microseconds: ppoll on a pipe nobody writes
/// to, or nanosleep. The doorbell signal interrupts either (EINTR; ppoll is
/// never restarted): then it blocks again for what is left.
void block_for(std::uint64_t us, int pipe_fd, bool use_ppoll) {
  const auto end = clock::now() + std::chrono::microseconds(us);
  for (auto now = clock::now(); now < end; now = clock::now()) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(end - now).count();
    timespec ts{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    if (use_ppoll && pipe_fd >= 0) {
      pollfd p{pipe_fd, POLLIN, 0};
      (void)ppoll(&p, 1, &ts, nullptr);
    } else {
      (void)nanosleep(&ts, nullptr);
    }
  }
}

/// Time to the next blocking wait: 2 .. 10 ms, so a host with --proxy is
/// parked about a quarter of the time.
clock::duration blocking_gap(rng& r) { return std::chrono::microseconds(2000 + r.below(8000)); }

}  // namespace

attached_hosts::attached_hosts(run_state& run) : run_(run) {
  if (run_.opt.attached && run_.opt.delivery == xcall::delivery_mode::fd) {
    stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
}

attached_hosts::~attached_hosts() {
  join();
  if (stop_fd_ >= 0) close(stop_fd_);
}

void attached_hosts::wake_fd_hosts() noexcept {
  if (stop_fd_ < 0) return;
  const std::uint64_t one = 1;
  // Never read: it stays readable, so every later wait returns at once.
  while (write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

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
  if (!threads_.empty()) wake_fd_hosts();  // after stop_hosts (main.cpp)
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool attached_hosts::try_attach(xcall::cpu_t cpu, xcall::cpu_attachment& att, std::string& why) {
  try {
    att = run_.dom->attach(
        cpu, xcall::attach_options{.delivery = run_.opt.delivery, .proxy = run_.opt.proxy});
    return true;
  } catch (const std::system_error& e) {
    why = e.what();
    if (e.code() == std::errc::device_or_resource_busy) why = "EBUSY: " + why;
  } catch (const std::bad_alloc&) {
    why = "bad_alloc";
    if (run_.enomem_ok) add(event::enomem);  // --fault fail_alloc: try again
  }
  return false;
}

bool attached_hosts::attach_raced(xcall::cpu_t cpu, xcall::cpu_attachment& att) {
  // A second thread attaches the same CPU at the same moment: exactly one
  // may win, the other must get EBUSY with a message. A racer that wins
  // hosts the CPU for a moment (running what arrives at its detach) and
  // leaves, and the host attaches again.
  add(event::attach_races);
  std::atomic<int> ready{0};
  std::atomic<bool> host_tried{false};
  bool racer_won = false;
  std::string racer_why;
  std::thread racer([&] {
    prepare_thread();        // a doorbell handler may run on it
    host_marks::claim(cpu);  // while it hosts the CPU, it is its host thread
    ready.fetch_add(1, std::memory_order_relaxed);
    while (ready.load(std::memory_order_relaxed) < 2) {
    }
    xcall::cpu_attachment mine;
    racer_won = try_attach(cpu, mine, racer_why);
    // A winner holds the CPU (serving its calls) until the host has tried,
    // so the two attaches overlap: "both won" is then a real double host.
    while (racer_won && !host_tried.load(std::memory_order_relaxed)) xcall::poll();
    if (racer_won) mine.detach();
    host_marks::claim(xcall::no_cpu);
  });
  ready.fetch_add(1, std::memory_order_relaxed);
  while (ready.load(std::memory_order_relaxed) < 2) {
  }
  std::string why;
  const bool won = try_attach(cpu, att, why);
  host_tried.store(true, std::memory_order_relaxed);
  racer.join();  // orders the racer's results before the reads below
  const std::string what = "CPU " + std::to_string(cpu) + ", host and racer attaching at once";
  if (won && racer_won) {
    fail(check::attach_race, what + ": both won");
  } else if (!won && !racer_won) {
    if (run_.enomem_ok && (why == "bad_alloc" || racer_why == "bad_alloc")) {
      pass(check::attach_race);  // allocation failure; the retry below decides
    } else {
      fail(check::attach_race,
           what + ": neither won (host: " + why + "; racer: " + racer_why + ")");
    }
  } else {
    const std::string& loser = won ? racer_why : why;
    if (loser.rfind("EBUSY: ", 0) == 0 && loser.size() > 7) {
      pass(check::attach_race);
    } else {
      fail(check::attach_race, what + ": the loser got '" + loser + "', not EBUSY with a message");
    }
  }
  if (racer_won) add(event::racer_won);
  return won;
}

bool attached_hosts::attach(xcall::cpu_t cpu, xcall::cpu_attachment& att, bool race) {
  run_.hotplug.write();  // not a host right now: may block
  run_.online.begin(cpu);
  std::string why;
  bool ok = race && attach_raced(cpu, att);
  // --fault fail_alloc: attach may throw bad_alloc; it is retried.
  for (unsigned tries = 0; !ok && tries < 100; ++tries) {
    ok = try_attach(cpu, att, why);
    if (ok || !run_.enomem_ok || why != "bad_alloc") break;
  }
  if (!ok) fail(check::hotplug, "attach(" + std::to_string(cpu) + ") threw: " + why);
  const bool online = run_.dom->cpu_online(cpu);
  run_.online.end(cpu, online);
  run_.hotplug.unwrite();
  if (ok) {
    add(event::attach);
    run_.online_count.fetch_add(1, std::memory_order_relaxed);
    if (online && xcall::this_cpu() == cpu) {
      pass(check::hotplug);
    } else {
      fail(check::hotplug,
           "CPU " + std::to_string(cpu) + " is not online (or not ours) after attach");
    }
  }
  return ok;
}

void attached_hosts::detach(xcall::cpu_t cpu, xcall::cpu_attachment& att) {
  run_.hotplug.write_polling();  // still a host: keep running our calls
  run_.online.begin(cpu);
  att.detach();
  const bool online = run_.dom->cpu_online(cpu);
  run_.online.end(cpu, online);
  run_.hotplug.unwrite();
  add(event::detach);
  if (!online && xcall::this_cpu() == xcall::no_cpu) {
    pass(check::hotplug);
  } else {
    fail(check::hotplug, "CPU " + std::to_string(cpu) + " is still online after detach");
  }
}

void attached_hosts::compute(xcall::cpu_t cpu, rng& r) {
  // Mostly short, sometimes long enough that several calls queue up.
  const std::uint64_t us = r.one_in(4) ? 200 + r.below(1801) : 5 + r.below(196);
  if (!r.one_in(kGuardOneIn)) {
    spin_for(r, us);  // the doorbell handler runs calls in the middle of this
    return;
  }
  add(event::guarded_work);
  std::optional<xcall::irq_guard> guard;
  guard.emplace();
  run_.marks.set_guarded(cpu, true);
  spin_for(r, us);  // calls arriving now wait for the guard's end
  run_.marks.set_guarded(cpu, false);
  guard.reset();  // runs them, here, outside the mark
}

void attached_hosts::blocking_wait(xcall::cpu_t cpu, rng& r, int pipe_fd, activity& slot,
                                   fd_loop* loop) {
  const std::uint64_t us = 500 + r.below(3501);
  const bool use_ppoll = r.coin();
  const bool in_loop = loop != nullptr && r.coin();
  add(event::blocking_waits);
  // Inside an irq_guard a blocking_region must change nothing: no proxy may
  // run our calls, nor the signal's handler (the "guarded" mark checks both).
  std::optional<xcall::irq_guard> guard;
  if (r.one_in(kGuardedBlockOneIn)) {
    add(event::guarded_work);
    guard.emplace();
    run_.marks.set_guarded(cpu, true);
  }
  if (run_.opt.proxy) {
    slot.begin("blocking_region", cpu);
    run_.marks.set_parked(cpu, true);  // before the region: see host_marks.hpp
    {
      xcall::blocking_region region;
      host_marks::set_in_region(true);
      if (in_loop) {
        loop->block_parked(us);  // the event loop's wait: its loop_wait is inert here
      } else {
        block_for(us, pipe_fd, use_ppoll);
      }
      host_marks::set_in_region(false);
    }
    run_.marks.set_parked(cpu, false);  // after it: no proxy runs any more
  } else {
    slot.begin("blocking system call", cpu);
    block_for(us, pipe_fd, use_ppoll);  // signal delivery: interrupted by the doorbell
  }
  slot.end();
  if (guard) {
    run_.marks.set_guarded(cpu, false);
    guard.reset();
  }
}

void attached_hosts::host_main(xcall::cpu_t cpu, invoker& inv) {
  const std::string name = "xt-host/" + std::to_string(cpu);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  activity& slot = new_activity("host of CPU " + std::to_string(cpu));
  rng r(mix_seed(run_.opt.seed, 3000 + cpu));
  host_marks::claim(cpu);
  // The doorbell handler counts on this thread: its block must exist first
  // (making it allocates).
  prepare_thread();
  const bool by_signal = run_.opt.delivery == xcall::delivery_mode::signal;
  const bool blocks = by_signal || run_.opt.proxy;
  int pipe_fds[2] = {-1, -1};
  if (blocks && pipe2(pipe_fds, O_CLOEXEC) != 0) pipe_fds[0] = pipe_fds[1] = -1;  // nanosleep only
  // --delivery fd: the host's event loop; its set takes each attachment's fd.
  std::optional<fd_loop> loop;
  if (run_.opt.delivery == xcall::delivery_mode::fd) loop.emplace(run_, cpu, stop_fd_);

  xcall::cpu_attachment att;
  slot.begin("attach", cpu);
  const bool attached = attach(cpu, att, false);
  slot.end();
  if (attached && loop) loop->bind(att);
  // release: pairs with the acquire in start().
  ready_.fetch_add(1, std::memory_order_release);

  const double interval = run_.opt.onoff_interval_s;
  auto jitter = [&r](double s) {
    return std::chrono::duration_cast<clock::duration>(
        std::chrono::duration<double>(s * (0.5 + static_cast<double>(r.below(1000)) / 1000)));
  };
  auto next_onoff = clock::now() + jitter(interval);
  auto next_block = clock::now() + blocking_gap(r);
  while (attached && !run_.stop_hosts.load(std::memory_order_relaxed)) {
    if (by_signal) {
      compute(cpu, r);
    } else {
      work(r);
    }
    if (!run_.stopping() && !run_.paused.load(std::memory_order_relaxed) && r.one_in(kCallOneIn)) {
      inv.run_one();
    }
    if (blocks && clock::now() >= next_block) {
      blocking_wait(cpu, r, pipe_fds[0], slot, loop ? &*loop : nullptr);
      next_block = clock::now() + blocking_gap(r);
    }
    // Polling hosts reach a safe point every turn; signalled ones only now
    // and then (the signal brings the rest); fd hosts wait in their event
    // loop every turn (the end of its loop_wait is their safe point).
    if (loop) {
      loop->wait(r, att, slot);
    } else if (!by_signal || r.one_in(kSignalSafePointOneIn)) {
      if (r.one_in(kSleepOneIn)) {
        xcall::idle_wait(std::chrono::microseconds(200));
      } else {
        xcall::poll();
      }
    }
    if (interval <= 0 || run_.stopping() || clock::now() < next_onoff) continue;
    next_onoff = clock::now() + jitter(interval);
    int online = run_.online_count.load(std::memory_order_relaxed);
    if (online <= 1 ||
        !run_.online_count.compare_exchange_strong(online, online - 1, std::memory_order_relaxed)) {
      continue;  // keep one CPU online (the count was taken down for us)
    }
    slot.begin("detach", cpu);
    if (loop) loop->unbind();  // the fd goes with the attachment
    detach(cpu, att);
    slot.begin("offline", cpu);
    const auto back = clock::now() + jitter(interval / 4);
    while (clock::now() < back && !run_.stopping()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    slot.begin("re-attach", cpu);
    const bool ok = attach(cpu, att, run_.opt.attach_race);
    slot.end();
    if (!ok) break;
    if (loop) loop->bind(att);  // a new attachment, a new fd
  }
  if (att) {
    slot.begin("final detach", cpu);
    run_.online_count.fetch_sub(1, std::memory_order_relaxed);
    if (loop) loop->unbind();
    detach(cpu, att);
    slot.end();
  }
  for (int fd : pipe_fds) {
    if (fd >= 0) close(fd);
  }
}

namespace {

/// --delivery fd, whatever the run's length: every write lands inside a
/// loop_wait that announced, at most one per wait (a burst costs one); an
/// epoll wake by the doorbell needs a write of its own wait.
void check_fd_counts(std::uint64_t writes, const totals& t) {
  const std::uint64_t waits = t.get(event::fd_waits);
  const std::uint64_t wakes = t.get(event::fd_wakes);
  if (writes <= waits) {
    pass(check::doorbell_fd);
  } else {
    fail(check::doorbell_fd, std::to_string(writes) + " doorbell fd writes (doorbell_fd_writes) " +
                                 "for " + std::to_string(waits) +
                                 " loop_waits that announced: more than one write per wait");
  }
  if (wakes <= writes) {
    pass(check::doorbell_fd);
  } else {
    fail(check::doorbell_fd, "epoll_wait returned the doorbell fd " + std::to_string(wakes) +
                                 " times, but the library wrote it only " + std::to_string(writes) +
                                 " times");
  }
}

}  // namespace

void check_modes_exercised(const run_state& run, const std::vector<xcall::cpu_stats>& stats) {
  const torture_options& o = run.opt;
  const bool by_signal = o.delivery == xcall::delivery_mode::signal;
  const bool by_fd = o.delivery == xcall::delivery_mode::fd;
  if (!o.attached || (!by_signal && !by_fd && !o.proxy)) return;
  std::uint64_t sent = 0, runs = 0, deferred = 0, proxied = 0, fd_writes = 0;
  for (const xcall::cpu_stats& s : stats) {
    sent += s.signals_sent;
    runs += s.signal_runs;
    deferred += s.signals_deferred;
    proxied += s.proxy_runs;
    fd_writes += s.doorbell_fd_writes;
  }
  const totals t = sum_totals();
  if (by_fd) check_fd_counts(fd_writes, t);
  if (o.duration_s < kModeCheckMinSeconds) {
    console::line("xcall-torture: a run shorter than " +
                  std::to_string(static_cast<int>(kModeCheckMinSeconds)) +
                  " s does not check that --delivery signal / fd and --proxy were exercised");
    return;
  }
  if (by_signal && sent < kModeCheckMinChances) {
    console::line("xcall-torture: only " + std::to_string(sent) +
                  " doorbell signals sent: too few to check that --delivery signal was exercised");
  } else if (by_signal) {
    if (runs != 0) {
      pass(check::delivery);
    } else {
      fail(check::delivery,
           "--delivery signal: no doorbell signal handler ran a call in the whole run (" +
               std::to_string(sent) + " signals sent, " + std::to_string(deferred) +
               " deferred; the tool saw " + std::to_string(t.get(event::in_signal)) +
               " of its functions run inside a handler): signal delivery was not exercised");
    }
  }
  const std::uint64_t fd_waits = t.get(event::fd_waits);
  if (by_fd && fd_waits < kModeCheckMinChances) {
    console::line("xcall-torture: only " + std::to_string(fd_waits) +
                  " fd waits: too few to check that --delivery fd was exercised");
  } else if (by_fd) {
    const std::uint64_t wake_runs = t.get(event::fd_wake_runs);
    if (fd_writes != 0 && wake_runs != 0) {
      pass(check::delivery);
    } else {
      fail(check::delivery, "--delivery fd: " + std::to_string(fd_writes) +
                                " doorbell fd writes and " + std::to_string(wake_runs) +
                                " epoll wakes by the doorbell after which calls ran, " + "in " +
                                std::to_string(fd_waits) + " loop_waits (" +
                                std::to_string(t.get(event::fd_wakes)) +
                                " doorbell wakes in all): fd delivery was not exercised");
    }
  }
  const std::uint64_t regions = t.get(event::blocking_waits);
  if (o.proxy && regions < kModeCheckMinChances) {
    console::line("xcall-torture: only " + std::to_string(regions) +
                  " blocking regions: too few to check that --proxy was exercised");
  } else if (o.proxy) {
    if (proxied != 0) {
      pass(check::delivery);
    } else {
      fail(check::delivery, "--proxy: no proxy ran a call in the whole run (" +
                                std::to_string(t.get(event::blocking_waits)) +
                                " blocking regions; the tool saw " +
                                std::to_string(t.get(event::by_proxy)) +
                                " of its functions run by a proxy): proxying was not exercised");
    }
  }
}

}  // namespace xcall_torture
