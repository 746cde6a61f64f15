// harness.hpp — the two shapes every measurement takes.
//
//  - sample_latency(): time one operation at a time (a round trip: the
//    caller does not return before the far side answered), `samples` times
//    after a warm-up, optionally with a gap between operations so that the
//    far side goes idle (past its spin window) before each one, or a
//    random gap that puts each operation at a random phase of a far side
//    that works in fixed periods (a host that polls every N µs).
//  - run_producers(): start P producer threads, each pinned away from the
//    target's core, release them together, let them issue operations for a
//    fixed time, then stop them; the caller waits until the target has run
//    everything issued and divides by the elapsed time.
//
// Both are used unchanged for floors, peers and xcall, so the harness's own
// cost (one timestamp pair per sample, one relaxed load of `stop` every few
// hundred operations) is the same on both sides of every ratio.
//
// Ordering: run_producers() releases the producers with a release store of
// `go` that their acquire loads pair with; `ready` and `stop` are relaxed
// (a start line and a stop flag: they publish nothing). The producers'
// counts reach the caller through thread join.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "affinity.hpp"
#include "clock.hpp"
#include "results.hpp"
#include "stats.hpp"

namespace xcall::bench {

struct series_options {
  std::size_t samples = 10000;
  std::size_t warmup = 200;
  double max_seconds = 4.0;  ///< stop early (keeping what was sampled) past this
  double gap_ns = 0;         ///< busy-wait this long before each operation
  /// Plus a uniformly random 0 .. gap_spread_ns more before each operation:
  /// a fixed gap would meet a periodic far side at the same phase every time.
  double gap_spread_ns = 0;
};

inline series_options series(const config& cfg, double gap_ns = 0) {
  series_options s;
  s.samples = cfg.latency_samples;
  s.warmup = cfg.quick ? 50 : 200;
  s.max_seconds = cfg.max_series_seconds;
  s.gap_ns = gap_ns;
  return s;
}

/// Samples of op()'s duration in nanoseconds.
template <class Op>
std::vector<double> sample_latency(const series_options& opt, Op&& op) {
  // xorshift64: a cheap, fixed-seed generator for the random part of the gap
  // (the same sequence every run; only its spread matters).
  std::uint64_t rng = 0x9e3779b97f4a7c15ull;
  const auto gap = [&opt, &rng] {
    double ns = opt.gap_ns;
    if (opt.gap_spread_ns > 0) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      ns += opt.gap_spread_ns * static_cast<double>(rng >> 11) * 0x1.0p-53;
    }
    if (ns > 0) spin_for_ns(ns);
  };
  for (std::size_t i = 0; i < opt.warmup; ++i) {
    gap();
    op();
  }
  std::vector<std::uint64_t> ticks(opt.samples);
  const double start = now_seconds();
  std::size_t n = 0;
  for (; n < opt.samples; ++n) {
    gap();
    const std::uint64_t t0 = now_ticks();
    op();
    const std::uint64_t t1 = now_ticks();
    ticks[n] = t1 - t0;
    if ((n & 63) == 63 && now_seconds() - start > opt.max_seconds) {
      ++n;
      break;
    }
  }
  std::vector<double> ns(n);
  for (std::size_t i = 0; i < n; ++i) ns[i] = ticks_to_ns(ticks[i]);
  return ns;
}

/// A latency figure from samples (summary and chart curve).
inline measurement latency_figure(std::string id, std::string label, std::vector<double> samples,
                                  std::string note = {}) {
  measurement m;
  m.id = std::move(id);
  m.label = std::move(label);
  m.kind = figure_kind::latency;
  m.note = std::move(note);
  m.lat = summarize(samples);
  m.curve = quantile_curve(samples, 120);
  return m;
}

inline measurement throughput_figure(std::string id, std::string label, double rate,
                                     std::string note = {}) {
  measurement m;
  m.id = std::move(id);
  m.label = std::move(label);
  m.kind = figure_kind::throughput;
  m.rate = rate;
  m.note = std::move(note);
  return m;
}

inline measurement unavailable(std::string id, std::string label, figure_kind kind,
                               std::string why) {
  measurement m;
  m.id = std::move(id);
  m.label = std::move(label);
  m.kind = kind;
  m.available = false;
  m.note = std::move(why);
  return m;
}

/// Producers per "all producers → one target" figure: every host core but
/// the target's, and at least two, so that the figure has concurrent
/// producers even on a 2-core machine (where it oversubscribes: say so).
inline unsigned all_producers() {
  const unsigned others = host_cores() > 1 ? host_cores() - 1 : 1;
  return others < 2 ? 2 : others;
}

/// Waits until ready(): spins a little (the common case is a wait of a few
/// hundred nanoseconds), then yields the core on every turn, so that a
/// waiting producer never keeps the thread it waits for off a shared core
/// (two producers share a core on a 2-core machine; other load may too).
template <class Ready>
void spin_then_yield(Ready&& ready) {
  for (unsigned i = 0; !ready(); ++i) {
    if (i < 256) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
}

struct producer_run {
  std::uint64_t issued = 0;       ///< operations issued by all producers
  std::uint64_t start_ticks = 0;  ///< when they were released
};

/// Runs `producers` threads for about `seconds`: thread k is pinned to
/// producer_core(k) and runs body(k, stop), which issues operations until
/// `stop` reads true and returns how many it issued.
template <class Body>
producer_run run_producers(unsigned producers, double seconds, Body&& body) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> issued(producers, 0);
  std::vector<std::thread> threads;
  threads.reserve(producers);
  for (unsigned k = 0; k < producers; ++k) {
    threads.emplace_back([&, k] {
      pin_self(producer_core(k));
      // relaxed: a start line; the go flag's acquire orders what matters.
      ready.fetch_add(1, std::memory_order_relaxed);
      // acquire: pairs with the release store of go below.
      while (!go.load(std::memory_order_acquire)) cpu_relax();
      issued[k] = body(k, stop);
    });
  }
  while (ready.load(std::memory_order_relaxed) != producers) std::this_thread::yield();
  producer_run run;
  run.start_ticks = now_ticks();
  // release: pairs with the producers' acquire loads of go.
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  // relaxed: producers poll it; nothing is published with it.
  stop.store(true, std::memory_order_relaxed);
  for (auto& t : threads) t.join();
  for (std::uint64_t n : issued) run.issued += n;
  return run;
}

/// Waits until done() or `timeout_s` passes; returns the tick it saw done
/// (0 on timeout).
template <class Done>
std::uint64_t wait_until_done(Done&& done, double timeout_s = 60) {
  const double start = now_seconds();
  for (unsigned i = 0; !done(); ++i) {
    if ((i & 255) == 0 && now_seconds() - start > timeout_s) return 0;
    if (i < 256) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  return now_ticks();
}

/// Rate of a producer run that the target finished at `end_ticks`.
inline double rate_of(const producer_run& run, std::uint64_t end_ticks) {
  if (end_ticks <= run.start_ticks) return 0;
  return static_cast<double>(run.issued) / (ticks_to_ns(end_ticks - run.start_ticks) * 1e-9);
}

/// One throughput trial: its rate and a note on how it went.
struct trial {
  double rate = 0;
  std::string note;
};

/// The best of several trials. On a shared machine interference only ever
/// slows a trial down, so the best trial is the closest to what the
/// mechanism does when it has the cores; every figure, xcall's and its
/// peers', is taken the same way, and the note keeps all the rates.
struct best_trial {
  trial best;
  std::vector<double> rates;
  std::string note() const {
    std::string s = best.note + "; best of " + std::to_string(rates.size()) + " trials (";
    for (std::size_t i = 0; i < rates.size(); ++i) {
      s += fmt::format("{}{:.3g}", i ? ", " : "", rates[i] / 1e6);
    }
    return s + " M/s)";
  }
};

template <class Trial>
best_trial best_of(unsigned trials, Trial&& run_trial) {
  best_trial b;
  for (unsigned i = 0; i < trials; ++i) {
    trial t = run_trial();
    b.rates.push_back(t.rate);
    if (i == 0 || t.rate > b.best.rate) b.best = std::move(t);
  }
  return b;
}

/// "1234567 calls in 1.02 s", for a throughput figure's note.
inline std::string run_note(const producer_run& run, std::uint64_t end_ticks) {
  const double s =
      end_ticks > run.start_ticks ? ticks_to_ns(end_ticks - run.start_ticks) * 1e-9 : 0;
  return fmt::format("{} calls in {:.2f} s", run.issued, s);
}

}  // namespace xcall::bench
