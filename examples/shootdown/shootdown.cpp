// shootdown — a lazy-TLB shootdown over a live cpumask, the case that motivated
// the kernel commit "smp_call_function_many: handle concurrent clearing of mask".
//
// A domain of CPUs shares one "page table": page -> (frame, version). Each CPU
// caches translations in a private TLB and keeps its bit set in the live
// `active` mask while it uses the mapping (the kernel's mm_cpumask). A CPU that
// goes idle clears its bit lazily, keeping its TLB; when it becomes active
// again it flushes the whole TLB before it sets its bit back (lazy TLB).
//
// A driver thread keeps every CPU busy with asynchronous `use` calls
// (call_function_single_async). A mapper thread bumps the version of a page and
// shoots the old translation down with
//     call_function_many(active, invalidate, &shootdown, wait=true)
// while the CPUs flip their bits in `active` under it. When the call returns
// the mapper retires the old version; from then on any use of it is stale.
// The program counts stale uses and fails if there is one.
//
// Ordering: the edges that make the stale check sound.
//  - CPU becoming active: set bit (release RMW), seq_cst fence, read PTE.
//    Mapper: write PTE, seq_cst fence, call_function_many reads `active`.
//    This is a store->load pattern on both sides (store buffering), which
//    acquire/release alone does not order: either the call's snapshot sees
//    the CPU's bit, or the CPU's PTE read sees the new version.
//  - Mapper's PTE write happens-before `invalidate` runs on each target
//    (xcall guarantee 4), and with wait every `invalidate` happens-before
//    call_function_many returns.
//  - Mapper's release store of valid_from[page] after the call pairs with the
//    acquire load in use(): a use that sees the new valid_from also sees
//    every invalidate that the shootdown ran.
//  - Per-CPU TLBs and counters are plain data touched only by the CPU's host
//    thread; main reads the counters through on_each_cpu with wait
//    (guarantee 4 again).
//  - A CPU that clears its bit during a shootdown may or may not run it
//    (guarantee 2: at most once); either is safe, since it flushes its whole
//    TLB before it sets the bit again.
//
// Why a stale use cannot happen: suppose CPU c uses version w of page p after
// it read valid_from[p] = v+1 > w. Its entry was filled in c's current active
// period (activation flushes the TLB). The fill read the PTE before the v+1
// store, so by the fence pair the shootdown's snapshot saw c's bit set; c
// clears it only after the use, and the use comes after the call returned. So c was
// in the mask for the whole call and ran `invalidate(p)` (guarantee 1); that
// run comes after the fill (else the fill would have read v+1) and before the
// use, so the use missed and refilled the new version. With --no-lazy-flush
// the activation flush is skipped and stale uses do appear: the check has
// teeth.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "xcall/xcall.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

constexpr unsigned kTlbSlots = 16;    // direct-mapped: page % kTlbSlots
constexpr unsigned kUsesPerCall = 8;  // translations looked up per `use` call
constexpr unsigned kIdleOneIn = 8;    // a `use` call goes lazy-idle 1 time in 8

// ---------------------------------------------------------------------------
// The shared page table. A PTE is one atomic word: version << 20 | frame.

constexpr unsigned kFrameBits = 20;

std::uint64_t make_pte(std::uint32_t page, std::uint64_t version) {
  // Any frame will do; derive it from the page and version so it changes.
  const std::uint64_t frame = (page * 2654435761u + version * 40503u) & ((1u << kFrameBits) - 1);
  return version << kFrameBits | frame;
}
std::uint64_t pte_version(std::uint64_t pte) { return pte >> kFrameBits; }
std::uint32_t pte_frame(std::uint64_t pte) {
  return static_cast<std::uint32_t>(pte & ((1u << kFrameBits) - 1));
}

struct page_table {
  explicit page_table(unsigned n)
      : pages(n),
        pte(std::make_unique<std::atomic<std::uint64_t>[]>(n)),
        valid_from(std::make_unique<std::atomic<std::uint64_t>[]>(n)) {
    for (unsigned p = 0; p < n; ++p) {
      pte[p].store(make_pte(p, 1), std::memory_order_relaxed);  // before any thread starts
      valid_from[p].store(1, std::memory_order_relaxed);
    }
  }
  unsigned pages;
  // Written by the mapper (release), read by CPUs filling their TLB (acquire).
  std::unique_ptr<std::atomic<std::uint64_t>[]> pte;
  // The oldest version still valid for each page: the mapper raises it after
  // the shootdown for the older version returned. Release in the mapper,
  // acquire in use().
  std::unique_ptr<std::atomic<std::uint64_t>[]> valid_from;
};

// ---------------------------------------------------------------------------
// A CPU's private state: touched only by functions running on that CPU.

struct tlb_entry {
  bool valid = false;
  std::uint32_t page = 0;
  std::uint32_t frame = 0;
  std::uint64_t version = 0;
};

struct cpu_counters {
  std::uint64_t use_calls = 0;   // `use` calls run
  std::uint64_t uses = 0;        // translations used
  std::uint64_t stale = 0;       // ...of which stale
  std::uint64_t fills = 0;       // TLB misses filled from the page table
  std::uint64_t shootdowns = 0;  // `invalidate` calls run
  std::uint64_t dropped = 0;     // ...that dropped a cached entry
  std::uint64_t lazy_idles = 0;  // times the CPU went lazy-idle
  std::uint64_t wrong_cpu = 0;   // a call ran on a CPU it was not sent to
};

struct shared_state;

// One cache line or more per CPU: only its host writes it.
struct alignas(64) cpu_state {
  xcall::cpu_t cpu = 0;
  shared_state* shared = nullptr;
  bool active = false;    // mirror of our bit in shared->active
  std::uint64_t rng = 0;  // xorshift64
  tlb_entry tlb[kTlbSlots];
  cpu_counters stats;
  xcall::call_single_data use_csd;  // the driver's async `use` call to this CPU

  std::uint64_t next_random() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }
  void flush_all() {
    for (tlb_entry& e : tlb) e.valid = false;
  }
};

struct shared_state {
  shared_state(xcall::cpu_t nr_cpus, unsigned pages, bool flush_on_activate)
      : table(pages), active(nr_cpus), cpus(nr_cpus), lazy_flush(flush_on_activate) {}
  page_table table;
  xcall::cpumask active;  // the live mm_cpumask
  std::vector<cpu_state> cpus;
  bool lazy_flush;  // false: the deliberate bug of --no-lazy-flush
};

// ---------------------------------------------------------------------------
// Functions run on the CPUs.

// The CPU starts using the mapping: flush what it cached while lazy, then set
// its bit so shootdowns reach it.
void become_active(cpu_state& st) {
  if (st.shared->lazy_flush) st.flush_all();
  st.shared->active.set(st.cpu);
  // Store (our bit) then load (PTEs in lookup()): pairs with the fence in
  // mapper() between its PTE store and call_function_many's read of `active`.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  st.active = true;
}

// Lazy idle: stop receiving shootdowns but keep the TLB (it is flushed when
// the CPU becomes active again).
void become_lazy(cpu_state& st) {
  st.shared->active.reset(st.cpu);
  st.active = false;
  ++st.stats.lazy_idles;
}

void lookup(cpu_state& st, std::uint32_t page) {
  page_table& table = st.shared->table;
  tlb_entry& e = st.tlb[page % kTlbSlots];
  if (!e.valid || e.page != page) {
    // Acquire pairs with the mapper's release store of the PTE (a real PTE
    // would publish the frame's contents).
    const std::uint64_t pte = table.pte[page].load(std::memory_order_acquire);
    e = tlb_entry{true, page, pte_frame(pte), pte_version(pte)};
    ++st.stats.fills;
  }
  // Pairs with the mapper's release store after its shootdown returned.
  const std::uint64_t valid_from = table.valid_from[page].load(std::memory_order_acquire);
  ++st.stats.uses;
  if (e.version < valid_from) ++st.stats.stale;
}

void use(void* info) noexcept {
  auto& st = *static_cast<cpu_state*>(info);
  if (xcall::this_cpu() != st.cpu) ++st.stats.wrong_cpu;
  ++st.stats.use_calls;
  if (!st.active) become_active(st);
  const unsigned pages = st.shared->table.pages;
  for (unsigned i = 0; i < kUsesPerCall; ++i) {
    lookup(st, static_cast<std::uint32_t>(st.next_random() % pages));
  }
  if (st.next_random() % kIdleOneIn == 0) become_lazy(st);
}

struct shootdown_info {
  shared_state* shared;
  std::uint32_t page;
  // Relaxed counters: the mapper reads them after call_function_many(wait)
  // returned, which orders every target's function before the return
  // (guarantee 4).
  std::atomic<unsigned> reached{0};    // CPUs that ran it
  std::atomic<unsigned> misrouted{0};  // runs on a thread that hosts no CPU
};

void invalidate(void* info) noexcept {
  auto& sd = *static_cast<shootdown_info*>(info);
  const xcall::cpu_t cpu = xcall::this_cpu();
  if (cpu >= sd.shared->cpus.size()) {
    sd.misrouted.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  cpu_state& st = sd.shared->cpus[cpu];
  ++st.stats.shootdowns;
  tlb_entry& e = st.tlb[sd.page % kTlbSlots];
  if (e.valid && e.page == sd.page) {
    e.valid = false;
    ++st.stats.dropped;
  }
  sd.reached.fetch_add(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// The two outside threads.

// Latency samples in a vector preallocated up front; once it is full, reservoir
// sampling keeps a uniform sample without allocating.
struct sampler {
  explicit sampler(std::size_t capacity) { samples.reserve(capacity); }
  void add(std::uint32_t ns, std::uint64_t random) {
    ++seen;
    if (samples.size() < samples.capacity()) {
      samples.push_back(ns);
    } else if (const std::uint64_t slot = random % seen; slot < samples.size()) {
      samples[slot] = ns;
    }
  }
  // Sorts in place; call once, at the end.
  double percentile_us(double q) {
    if (samples.empty()) return 0.0;
    if (!sorted) std::sort(samples.begin(), samples.end());
    sorted = true;
    const auto i = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
    return samples[i] / 1000.0;
  }
  std::vector<std::uint32_t> samples;
  std::uint64_t seen = 0;
  bool sorted = false;
};

struct mapper_result {
  explicit mapper_result(std::size_t capacity) : all(capacity), reaching(capacity) {}
  std::uint64_t updates = 0;
  std::uint64_t empty = 0;    // shootdowns that reached no CPU
  std::uint64_t reached = 0;  // sum of CPUs reached
  std::uint64_t errors = 0;
  sampler all;       // every shootdown
  sampler reaching;  // shootdowns that ran on at least one CPU
};

void mapper(xcall::domain& dom, shared_state& shared, const std::atomic<bool>& stop,
            mapper_result& out) {
  page_table& table = shared.table;
  std::vector<std::uint64_t> version(table.pages, 1);  // the mapper's own copy
  std::uint64_t rng = 0x9e3779b97f4a7c15ull;
  auto random = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  while (!stop.load(std::memory_order_relaxed)) {
    const auto page = static_cast<std::uint32_t>(random() % table.pages);
    const std::uint64_t v = ++version[page];
    // Publishes the new translation; pairs with the acquire in lookup().
    table.pte[page].store(make_pte(page, v), std::memory_order_release);
    // Store (PTE) then load (`active`, inside call_function_many): pairs with
    // the fence in become_active().
    std::atomic_thread_fence(std::memory_order_seq_cst);

    shootdown_info sd{&shared, page};
    const auto t0 = clock_type::now();
    const std::error_code ec = dom.call_function_many(shared.active, invalidate, &sd, true);
    const auto t1 = clock_type::now();
    if (ec) {
      if (out.errors++ == 0) {
        std::fprintf(stderr, "call_function_many: %s\n", ec.message().c_str());
      }
      continue;  // the old version is not retired: nothing may be checked against it
    }
    // Retire every version below v; pairs with the acquire in lookup().
    table.valid_from[page].store(v, std::memory_order_release);

    const unsigned reached = sd.reached.load(std::memory_order_relaxed);
    if (const unsigned bad = sd.misrouted.load(std::memory_order_relaxed); bad != 0) {
      if (out.errors == 0) std::fprintf(stderr, "invalidate ran on a thread that hosts no CPU\n");
      out.errors += bad;
    }
    out.reached += reached;
    out.empty += reached == 0;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    const auto sample = static_cast<std::uint32_t>(std::min<long long>(ns, UINT32_MAX));
    ++out.updates;
    out.all.add(sample, random());
    if (reached != 0) out.reaching.add(sample, random());
  }
}

// Keeps one async `use` call in flight per CPU.
std::uint64_t driver(xcall::domain& dom, shared_state& shared, const std::atomic<bool>& stop,
                     std::uint64_t& sent) {
  std::uint64_t errors = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    bool queued = false;
    for (cpu_state& st : shared.cpus) {
      if (st.use_csd.in_flight()) continue;
      const std::error_code ec = dom.call_function_single_async(st.cpu, st.use_csd);
      if (ec) {
        if (errors++ == 0) {
          std::fprintf(stderr, "call_function_single_async: %s\n", ec.message().c_str());
        }
        continue;
      }
      ++sent;
      queued = true;
    }
    if (!queued) std::this_thread::yield();
  }
  return errors;
}

const char* idle_name(xcall::idle_mode m) {
  switch (m) {
    case xcall::idle_mode::poll:
      return "poll";
    case xcall::idle_mode::adaptive:
      return "adaptive";
    case xcall::idle_mode::sleep:
      return "sleep";
  }
  return "?";
}

struct run_options {
  double seconds = 10.0;
  xcall::cpu_t nr_cpus = 4;
  unsigned pages = 64;
  xcall::idle_mode idle = xcall::idle_mode::adaptive;
  xcall::engine engine_kind = xcall::engine::percpu;
  bool no_lazy_flush = false;
};

struct run_result {
  explicit run_result(const run_options& o)
      : mapper(static_cast<std::size_t>(std::clamp(o.seconds * 100000.0, 1000.0, 2097152.0))),
        cpus(o.nr_cpus) {}
  double elapsed = 0;
  mapper_result mapper;
  std::uint64_t use_calls_sent = 0;
  std::uint64_t errors = 0;             // failed calls (all forms)
  std::vector<cpu_counters> cpus;       // the program's counters, per CPU
  std::vector<xcall::cpu_stats> xcall;  // the library's counters, per CPU
};

// Runs the domain, the driver and the mapper for o.seconds; fills `out`.
void run(const run_options& o, xcall::domain& dom, shared_state& shared, run_result& out) {
  std::atomic<bool> stop{false};
  std::uint64_t driver_errors = 0;
  const auto start = clock_type::now();
  std::thread driver_thread([&] { driver_errors = driver(dom, shared, stop, out.use_calls_sent); });
  std::thread mapper_thread([&] { mapper(dom, shared, stop, out.mapper); });
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  // Relaxed: the flag only ends the loops; join() orders their results.
  stop.store(true, std::memory_order_relaxed);
  driver_thread.join();
  mapper_thread.join();
  out.elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  out.errors = driver_errors + out.mapper.errors;

  // Every `use` has started once its descriptor is released; a CPU runs its
  // calls one after another, so the collection below runs after them.
  for (cpu_state& st : shared.cpus) {
    while (st.use_csd.in_flight()) std::this_thread::yield();
  }
  // Each CPU copies its own counters; with wait, those plain writes
  // happen-before on_each_cpu returns (guarantee 4).
  const std::error_code ec = dom.on_each_cpu([&] {
    const xcall::cpu_t c = xcall::this_cpu();
    out.cpus[c] = shared.cpus[c].stats;
  });
  if (ec) {
    ++out.errors;
    std::fprintf(stderr, "on_each_cpu: %s\n", ec.message().c_str());
  }
  out.xcall = dom.stats();
}

// Prints the results; returns the exit code.
int report(const run_options& o, run_result& r) {
  cpu_counters total;
  for (const cpu_counters& s : r.cpus) {
    total.use_calls += s.use_calls;
    total.uses += s.uses;
    total.stale += s.stale;
    total.fills += s.fills;
    total.shootdowns += s.shootdowns;
    total.dropped += s.dropped;
    total.lazy_idles += s.lazy_idles;
    total.wrong_cpu += s.wrong_cpu;
  }
  // Every `use` queued has run (guarantee 1: the CPUs stay online), exactly
  // once (guarantee 2), on the CPU it was sent to.
  std::uint64_t errors = r.errors;
  if (total.use_calls != r.use_calls_sent) {
    std::fprintf(stderr, "use calls: %" PRIu64 " queued but %" PRIu64 " ran\n", r.use_calls_sent,
                 total.use_calls);
    ++errors;
  }
  if (total.wrong_cpu != 0) {
    std::fprintf(stderr, "%" PRIu64 " calls ran on a CPU they were not sent to\n", total.wrong_cpu);
    errors += total.wrong_cpu;
  }
  const mapper_result& m = r.mapper;

  std::printf("\nresults after %.2f s\n", r.elapsed);
  std::printf("  updates            %12" PRIu64 "  (%.0f per second)\n", m.updates,
              static_cast<double>(m.updates) / r.elapsed);
  std::printf("  shootdown latency  p50 %8.2f us  p99 %8.2f us  all shootdowns\n",
              r.mapper.all.percentile_us(0.50), r.mapper.all.percentile_us(0.99));
  std::printf("                     p50 %8.2f us  p99 %8.2f us  those that reached a CPU\n",
              r.mapper.reaching.percentile_us(0.50), r.mapper.reaching.percentile_us(0.99));
  std::printf("  CPUs reached       %.2f per shootdown; %" PRIu64 " of %" PRIu64
              " found no active CPU (mask empty)\n",
              m.updates ? static_cast<double>(m.reached) / static_cast<double>(m.updates) : 0.0,
              m.empty, m.updates);
  std::printf("  use calls          %12" PRIu64 "  (%.0f per second)\n", total.use_calls,
              static_cast<double>(total.use_calls) / r.elapsed);
  std::printf("  uses               %12" PRIu64 "  translations, %" PRIu64 " TLB fills\n",
              total.uses, total.fills);
  std::printf("  stale uses         %12" PRIu64 "\n", total.stale);
  std::printf("  call errors        %12" PRIu64 "\n", errors);

  std::printf("\nper CPU: this program's counters, then xcall's (domain::stats)\n");
  std::printf("  %4s %10s %11s %6s %10s %8s %9s | %10s %8s %8s %8s\n", "cpu", "use calls", "uses",
              "stale", "shootdowns", "dropped", "lazy idle", "calls run", "rung", "saved",
              "sleeps");
  for (xcall::cpu_t c = 0; c < o.nr_cpus; ++c) {
    const cpu_counters& s = r.cpus[c];
    const xcall::cpu_stats& x = r.xcall.at(c);
    std::printf("  %4u %10" PRIu64 " %11" PRIu64 " %6" PRIu64 " %10" PRIu64 " %8" PRIu64
                " %9" PRIu64 " | %10" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
                c, s.use_calls, s.uses, s.stale, s.shootdowns, s.dropped, s.lazy_idles, x.calls_run,
                x.doorbells_rung, x.doorbells_saved, x.sleeps);
  }

  const bool ok = total.stale == 0 && errors == 0;
  if (ok) {
    std::printf("\nOK: no CPU used a translation after its shootdown returned\n");
  } else if (total.stale != 0) {
    std::printf("\nFAILURE: %" PRIu64 " stale uses%s\n", total.stale,
                o.no_lazy_flush ? " (expected with --no-lazy-flush)" : "");
  } else {
    std::printf("\nFAILURE: %" PRIu64 " call errors\n", errors);
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  run_options o;
  CLI::App app{"xcall shootdown: a lazy-TLB shootdown over a live cpumask"};
  app.add_option("--seconds", o.seconds, "how long to run")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--cpus", o.nr_cpus, "CPUs in the domain (owned threads)")
      ->capture_default_str()
      ->check(CLI::Range(xcall::cpu_t{1}, xcall::kMaxCpus));
  app.add_option("--pages", o.pages, "pages in the shared mapping")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1u << 20));
  const std::map<std::string, xcall::idle_mode> idle_modes{{"poll", xcall::idle_mode::poll},
                                                           {"adaptive", xcall::idle_mode::adaptive},
                                                           {"sleep", xcall::idle_mode::sleep}};
  app.add_option("--idle", o.idle, "how idle CPUs wait: poll, adaptive or sleep")
      ->transform(CLI::CheckedTransformer(idle_modes, CLI::ignore_case))
      ->option_text("poll|adaptive|sleep (adaptive)");
  const std::map<std::string, xcall::engine> engines{{"percpu", xcall::engine::percpu},
                                                     {"classic", xcall::engine::classic}};
  app.add_option("--engine", o.engine_kind, "how multi-CPU calls are queued: percpu or classic")
      ->transform(CLI::CheckedTransformer(engines, CLI::ignore_case))
      ->option_text("percpu|classic (percpu)");
  app.add_flag("--no-lazy-flush", o.no_lazy_flush,
               "deliberate bug: a CPU leaving lazy mode keeps its TLB; stale uses follow "
               "and the program fails");
  CLI11_PARSE(app, argc, argv);

  std::printf("xcall shootdown: lazy-TLB shootdown over a live cpumask\n");
  std::printf(
      "  %u CPUs (owned threads, idle %s, engine %s), %u pages, %u-entry TLB per CPU, "
      "%.3g s\n",
      o.nr_cpus, idle_name(o.idle), o.engine_kind == xcall::engine::classic ? "classic" : "percpu",
      o.pages, kTlbSlots, o.seconds);
  std::printf(
      "  CPUs set their bit in `active` while they use the mapping and clear it\n"
      "  when they go idle; the mapper bumps a page's version and calls\n"
      "  call_function_many(active, invalidate, wait=true) while those bits flip.\n"
      "  Check: once a shootdown returns, no CPU may use the old translation.\n");
  if (o.no_lazy_flush) {
    std::printf(
        "  --no-lazy-flush: CPUs leaving lazy mode keep their TLB (a bug; expect "
        "stale uses)\n");
  }
  std::fflush(stdout);

  // Declared before the domain, so they outlive it: its destructor runs what
  // is still queued, and those functions use them.
  shared_state shared(o.nr_cpus, o.pages, !o.no_lazy_flush);
  for (xcall::cpu_t c = 0; c < o.nr_cpus; ++c) {
    cpu_state& st = shared.cpus[c];
    st.cpu = c;
    st.shared = &shared;
    st.rng = 0x2545f4914f6cdd1dull * (c + 1);
    st.use_csd.func = use;
    st.use_csd.info = &st;
  }
  run_result result(o);

  xcall::domain_options options;
  options.nr_cpus = o.nr_cpus;
  options.idle = o.idle;
  options.engine_kind = o.engine_kind;
  try {
    xcall::domain dom(options);
    run(o, dom, shared, result);
  } catch (const std::invalid_argument& e) {  // bad options: the domain names the one
    std::fprintf(stderr, "shootdown: %s\n", e.what());
    return 2;
  }
  return report(o, result);
}
