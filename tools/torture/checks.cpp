// checks.cpp — call records, the handler every tool call runs, and the
// verification of each call.
//
// Ordering: see checks.hpp. In short: the caller's and handlers' plain fields
// are ordered only by the library (what is being tested); ran[] and
// cond_calls[] are relaxed for the same reason; refs is acq_rel so its last
// dropper sees every run; done is release (handler) / acquire (RPC caller);
// the retired list is a release push / acquire exchange.
#include "checks.hpp"

#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "host_marks.hpp"
#include "nesting.hpp"
#include "rendezvous.hpp"
#include "tally.hpp"
#include "xcall/cpu.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {
namespace {

using xcall::cpu_t;
using xcall::no_cpu;

std::string cpu_str(cpu_t cpu) {
  return cpu == no_cpu ? std::string("no CPU") : "CPU " + std::to_string(cpu);
}

void append_call(fixed_text& t, const run_state& run, op_kind kind, unsigned invoker,
                 std::uint64_t op_id, cpu_t caller_cpu, cpu_t target, unsigned depth,
                 std::uint64_t sub) noexcept {
  if (depth > 0) {
    // Nested: the function of a call of top-level operation #op made it.
    t << op_name(kind) << " (depth " << depth << ", nested #" << sub << ") under op #" << op_id
      << " of invoker " << invoker;
  } else {
    t << op_name(kind) << " #" << op_id << " of invoker " << invoker;
  }
  if (caller_cpu != no_cpu) t << " from CPU " << caller_cpu;
  if (target != no_cpu) t << " to CPU " << target;
  t << " (seed " << run.opt.seed << ")";
}

// Records freed inside the doorbell handler, waiting for reclaim_records().
// Only pushes and whole-list exchanges: no ABA.
std::atomic<call_record*> g_retired{nullptr};

void retire(call_record* rec) noexcept {
  call_record* head = g_retired.load(std::memory_order_relaxed);
  do {
    rec->retired_next = head;
    // release: the handler's writes to the record come before its delete;
    // pairs with the acquire exchange in reclaim_records().
  } while (!g_retired.compare_exchange_weak(head, rec, std::memory_order_release,
                                            std::memory_order_relaxed));
}

/// --handler-delay: up to that many microseconds, busy half the time.
void handler_delay(const run_state& run, cpu_t cpu) {
  const unsigned max_us = run.opt.handler_delay_us;
  if (max_us == 0) return;
  thread_local rng r(mix_seed(run.opt.seed, 0xde1a70000ull + cpu));
  const auto d = std::chrono::microseconds(r.below(std::uint64_t{max_us} + 1));
  if (r.coin()) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
  } else {
    std::this_thread::sleep_for(d);
  }
}

/// No-wait any: the bit of the CPU the handler runs on must have been set at
/// some point of the call. If its sequence still equals the bracket's first
/// half and the bit was clear then, no writer touched it since, and the
/// library's read of the mask (which happens-before this handler, through
/// the queue) saw it clear. seq() is relaxed: a flip the library saw is
/// ordered before this point by that same chain.
void handler_mask_check(const call_record& rec, cpu_t cpu, bool in_signal) {
  const live_mask::view& b = rec.mask_before[cpu];
  if ((b.seq & 1) == 0 && !b.set && rec.mask->seq(cpu) == b.seq) {
    handler_fail(&rec, nullptr, in_signal, check::right_cpu, "ran on ", cpu,
                 " whose bit was clear in the mask from before the call until now");
  } else {
    pass(check::right_cpu);
  }
}

void final_exact_check(const call_record& rec) {
  bool in_signal = false, asked = false;
  for (cpu_t c = 0; c < rec.run.nr_cpus; ++c) {
    if (rec.expected[c] != expect::once) continue;
    const std::uint32_t n = rec.ran[c].load(std::memory_order_relaxed);
    if (n == 1) {
      pass(check::exactly_once);
    } else if (n == 0) {
      if (!asked) in_signal = in_doorbell_handler(rec.run);  // the last dropper may be a handler
      asked = true;
      handler_fail(&rec, nullptr, in_signal, check::exactly_once, "", c,
                   " was in the mask and online for the whole call, but had not run it when "
                   "the last reference was dropped");
    }
  }
}

void finish(call_record* rec) {
  switch (rec->who) {
    case freed_by::caller:
      return;
    case freed_by::handler:
      free_record(rec);
      return;
    case freed_by::rpc:
      // release: publishes this handler's writes; pairs with the RPC caller's
      // acquire. The record is the caller's from here on.
      rec->done.store(true, std::memory_order_release);
      return;
    case freed_by::last_ref:
      drop_ref(rec);
      return;
  }
}

}  // namespace

call_record::call_record(run_state& r, op_kind k, bool w, freed_by f, unsigned inv,
                         std::uint64_t id, unsigned d, std::uint64_t n)
    : run(r),
      kind(k),
      wait(w),
      who(f),
      invoker(inv),
      op_id(id),
      depth(d),
      sub(n),
      caller_cpu(xcall::this_cpu()),
      caller_thread(std::this_thread::get_id()),
      ran(std::make_unique<std::atomic<std::uint32_t>[]>(r.nr_cpus)),
      out(std::make_unique<std::uint64_t[]>(r.nr_cpus)) {}

std::string describe_call(const run_state& run, op_kind kind, unsigned invoker, std::uint64_t op_id,
                          cpu_t caller_cpu, cpu_t target, unsigned depth, std::uint64_t sub) {
  fixed_text t;
  append_call(t, run, kind, invoker, op_id, caller_cpu, target, depth, sub);
  return t.str();
}

std::string call_record::describe() const {
  return describe_call(run, kind, invoker, op_id, caller_cpu, target, depth, sub);
}

void call_record::describe(fixed_text& text) const noexcept {
  append_call(text, run, kind, invoker, op_id, caller_cpu, target, depth, sub);
}

std::uint64_t call_record::expected_stamp() const noexcept {
  return mix_seed(op_id ^ (sub << 24) ^ (std::uint64_t{depth} << 56), invoker) | 1;  // never 0
}

void call_record::seal() noexcept {
  stamp = expected_stamp();
  stamp_check = ~stamp;
}

std::uint64_t call_record::out_value(cpu_t cpu) const noexcept {
  return stamp ^ (0x9e3779b97f4a7c15ull * (cpu + 1));
}

call_record* new_record(run_state& run, op_kind kind, bool wait, freed_by who, unsigned invoker,
                        std::uint64_t op_id, unsigned depth, std::uint64_t sub) {
  if (!wait) add(event::nowait_allocated);
  return new call_record(run, kind, wait, who, invoker, op_id, depth, sub);
}

void free_record(call_record* rec) {
  if (!rec->wait) {
    add(event::nowait_freed);
    pass(check::freed);
  }
  if (in_doorbell_handler(rec->run)) {
    retire(rec);  // no free() inside a signal handler
    return;
  }
  delete rec;
}

std::size_t reclaim_records() {
  // acquire: pairs with the release push in retire().
  call_record* rec = g_retired.exchange(nullptr, std::memory_order_acquire);
  std::size_t n = 0;
  while (rec != nullptr) {
    call_record* next = rec->retired_next;
    delete rec;
    rec = next;
    ++n;
  }
  return n;
}

namespace {
std::mutex g_kept_lock;
std::vector<call_record*> g_kept;
}  // namespace

void keep_until_end(call_record* rec) {
  // Out of the no-wait books now: nobody will free it before the end.
  if (!rec->wait) {
    add(event::nowait_freed);
    pass(check::freed);
  }
  std::lock_guard<std::mutex> g(g_kept_lock);
  g_kept.push_back(rec);
}

void verify_kept() {
  std::lock_guard<std::mutex> g(g_kept_lock);
  for (call_record* rec : g_kept) {
    std::uint32_t total = 0;
    for (cpu_t c = 0; c < rec->run.nr_cpus; ++c) {
      total += rec->ran[c].load(std::memory_order_relaxed);
    }
    if (total == 0) {
      pass(check::exception);
    } else {
      fail(check::exception, rec->describe() + ": " + std::to_string(total) +
                                 " CPUs ran it by the end of the run, although its predicate "
                                 "threw for CPU " +
                                 std::to_string(rec->throw_cpu) +
                                 " (nothing may be queued before every predicate ran)");
    }
    delete rec;  // not free_record(): it left the no-wait books when kept
  }
  g_kept.clear();
}

bool enomem_allowed(const run_state& run, std::error_code ec) {
  if (ec != std::errc::not_enough_memory || !run.enomem_ok) return false;
  add(event::enomem);
  pass(check::error_code);
  return true;
}

void handler_fail(const call_record* rec, const char* label, bool in_signal, check c,
                  const char* before, cpu_t cpu, const char* after) {
  fixed_text t;
  if (rec != nullptr) {
    rec->describe(t);
  } else {
    t << label;
  }
  t << ": " << before;
  if (cpu != no_cpu) t << "CPU " << cpu;
  t << after;
  if (in_signal) {
    fail_signal_safe(c, t.c_str());
  } else {
    fail(c, t.str());
  }
}

void check_where_it_runs(const run_state& run, const call_record* rec, const char* label,
                         bool in_signal, cpu_t cpu) {
  const host_marks& marks = run.marks;
  if (marks.guarded(cpu)) {
    handler_fail(rec, label, in_signal, check::irq_guard, "ran while the host of ", cpu,
                 " was inside its irq_guard-ed computation (it must run after the guard ends)");
  } else {
    pass(check::irq_guard);
  }
  if (host_marks::mine() == cpu) {
    host_marks::count_own_run();
    if (host_marks::in_region() && !host_marks::calling_in_region()) {
      handler_fail(rec, label, in_signal, check::proxy, "the host thread of ", cpu,
                   " ran it inside its blocking_region (where it is an outside caller)");
    } else {
      pass(check::proxy);
    }
    return;
  }
  add(event::by_proxy);
  if (!run.opt.proxy) {
    handler_fail(rec, label, in_signal, check::proxy, "ran for ", cpu,
                 " on another thread than its host, and --proxy is off");
  } else if (!marks.parked(cpu)) {
    handler_fail(rec, label, in_signal, check::proxy, "ran for ", cpu,
                 " on another thread (a proxy) while its host was not in a blocking_region");
  } else {
    pass(check::proxy);
  }
}

void handle_call(void* info) noexcept {
  auto* rec = static_cast<call_record*>(info);
  const run_state& run = rec->run;
  const cpu_t cpu = xcall::this_cpu();
  // Everything below must be async-signal-safe when this is true.
  const bool in_signal = in_doorbell_handler(run);
  add(event::handler_runs);
  if (in_signal) add(event::in_signal);

  if (rec->stamp != 0 && rec->stamp == rec->expected_stamp() && rec->stamp_check == ~rec->stamp) {
    pass(check::caller_write);
  } else {
    handler_fail(rec, nullptr, in_signal, check::caller_write, "the handler on ", cpu,
                 " did not see the caller's write made before the call");
  }

  if (cpu >= run.nr_cpus) {
    handler_fail(rec, nullptr, in_signal, check::right_cpu,
                 "the function ran on a thread that hosts no CPU", no_cpu, "");
  } else {
    if (rec->ran[cpu].fetch_add(1, std::memory_order_relaxed) == 0) {
      pass(check::at_most_once);
    } else {
      handler_fail(rec, nullptr, in_signal, check::at_most_once, "", cpu, " ran it twice");
    }
    rec->out[cpu] = rec->out_value(cpu);
    if (rec->target != no_cpu) {
      if (cpu == rec->target) {
        pass(check::right_cpu);
      } else {
        handler_fail(rec, nullptr, in_signal, check::right_cpu, "ran on ", cpu, "");
      }
    }
    if (rec->expected) {
      if (rec->expected[cpu] != expect::never) {
        pass(check::right_cpu);
      } else {
        handler_fail(rec, nullptr, in_signal, check::right_cpu, "ran on ", cpu,
                     ", which was not a target (outside the mask, offline, the caller, or its "
                     "predicate was false)");
      }
    }
    if (rec->cond_true) {
      const bool evaluated = rec->cond_calls[cpu].load(std::memory_order_relaxed) != 0;
      if (rec->cond_true[cpu] && evaluated) {
        pass(check::cond);
      } else {
        handler_fail(rec, nullptr, in_signal, check::cond, "ran on ", cpu,
                     evaluated ? ", where the predicate was false"
                               : " without evaluating the predicate for it");
      }
    }
    if (rec->mask_before) handler_mask_check(*rec, cpu, in_signal);
    if (run.opt.attached) check_where_it_runs(run, rec, nullptr, in_signal, cpu);
    // relaxed: best effort (verify_kept() is the real check): the caller
    // marks a thrown predicate before the exception leaves the library.
    if (rec->kind == op_kind::cond_throw && rec->threw.load(std::memory_order_relaxed)) {
      handler_fail(rec, nullptr, in_signal, check::exception, "ran on ", cpu,
                   " although its predicate threw");
    }
  }
  const bool meets = rec->kind == op_kind::rendezvous && cpu < run.nr_cpus;
  if (!in_signal) {
    // A proxy's run is marked before anything it drains meanwhile acts.
    host_marks::enter_run(cpu);
    if (meets) rendezvous_arrive(*rec, cpu, false);
    // The function acts (--nesting): calls, poll, idle, regions, guards, hotplug.
    maybe_act(*rec, cpu);
    host_marks::leave_run(cpu);
  } else if (meets) {
    rendezvous_arrive(*rec, cpu, true);
  }
  handler_delay(run, cpu == no_cpu ? 0 : cpu);
  finish(rec);
}

bool cond_predicate(cpu_t cpu, void* info) noexcept {
  auto* rec = static_cast<call_record*>(info);
  if (cpu >= rec->run.nr_cpus) {
    fail(check::cond,
         rec->describe() + ": predicate asked about CPU " + std::to_string(cpu) + ", out of range");
    return false;
  }
  rec->cond_calls[cpu].fetch_add(1, std::memory_order_relaxed);
  if (std::this_thread::get_id() == rec->caller_thread) {
    pass(check::cond);
  } else {
    fail(check::cond, rec->describe() + ": predicate for " + cpu_str(cpu) +
                          " evaluated on another thread than the caller's");
  }
  return rec->cond_true[cpu];
}

void drop_ref(call_record* rec) {
  // acq_rel: release publishes this side's run; acquire lets the last one see
  // every other run before it verifies and frees.
  if (rec->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  final_exact_check(*rec);
  free_record(rec);
}

call_window::call_window(cpu_t n) : mask1_(n), mask2_(n), online1_(n), online2_(n) {}

void call_window::before(const run_state& run, const live_mask* mask) {
  has_mask_ = mask != nullptr;
  for (cpu_t c = 0; c < run.nr_cpus; ++c) {
    online1_[c] = run.online.before(c);
    if (mask != nullptr) mask1_[c] = mask->before(c);
  }
}

void call_window::after(const run_state& run, const live_mask* mask) {
  for (cpu_t c = 0; c < run.nr_cpus; ++c) {
    if (mask != nullptr) mask2_[c] = mask->after(c);
    online2_[c] = run.online.after(c);
  }
}

held call_window::in_mask(cpu_t cpu) const noexcept {
  return has_mask_ ? classify(mask1_[cpu], mask2_[cpu]) : online(cpu);
}

held call_window::online(cpu_t cpu) const noexcept {
  return online_tracker::classify(online1_[cpu], online2_[cpu]);
}

void call_window::expectations(cpu_t self, bool runs_self, const bool* cond, expect* out) const {
  const auto n = static_cast<cpu_t>(online1_.size());
  for (cpu_t c = 0; c < n; ++c) {
    if (cond != nullptr && !cond[c]) {
      out[c] = expect::never;
      continue;
    }
    if (c == self) {
      // The caller's own CPU never gets a queued call: on_each_cpu* runs it
      // locally iff its bit is set when looked at; the rest skip it.
      const held h = in_mask(c);
      out[c] = !runs_self || h == held::clear ? expect::never
               : h == held::set               ? expect::once
                                              : expect::maybe;
      continue;
    }
    const held m = in_mask(c);
    const held o = online(c);
    if (m == held::clear || o == held::clear) {
      out[c] = expect::never;
    } else if (m == held::set && o == held::set) {
      out[c] = expect::once;
    } else {
      out[c] = expect::maybe;
    }
  }
}

void exact_expectations(const run_state& run, const xcall::cpumask* mask, cpu_t self,
                        bool runs_self, const bool* cond, expect* out) {
  for (cpu_t c = 0; c < run.nr_cpus; ++c) {
    const bool online = run.online.stable_online(c);
    if (run.dom->cpu_online(c) != online) {
      fail(check::hotplug, "the online mask says CPU " + std::to_string(c) + " is " +
                               (online ? "offline" : "online") +
                               " while no transition is in progress");
    }
    const bool in = mask != nullptr ? mask->test(c) : online;
    bool runs = in && (cond == nullptr || cond[c]);
    if (c == self) {
      runs = runs && runs_self;
    } else {
      runs = runs && online;
    }
    out[c] = runs ? expect::once : expect::never;
  }
}

void verify_runs(const call_record& rec, const expect* expected) {
  for (cpu_t c = 0; c < rec.run.nr_cpus; ++c) {
    const std::uint32_t n = rec.ran[c].load(std::memory_order_relaxed);
    if (n != 0) {
      if (rec.out[c] == rec.out_value(c)) {
        pass(check::handler_write);
      } else {
        fail(check::handler_write,
             rec.describe() + ": the caller did not see the write of " + cpu_str(c) + "'s handler");
      }
    }
    switch (expected[c]) {
      case expect::once:
        if (n == 1) {
          pass(check::exactly_once);
        } else if (n == 0) {
          fail(check::exactly_once, rec.describe() + ": " + cpu_str(c) +
                                        " was in the mask and online for the whole call but "
                                        "did not run it");
        }  // n > 1: the handler reported it
        break;
      case expect::never:
        if (n == 0) {
          pass(check::right_cpu);
        } else {
          fail(check::right_cpu, rec.describe() + ": " + cpu_str(c) +
                                     " ran it but was never a target (outside the mask or "
                                     "offline for the whole call, the caller itself, or its "
                                     "predicate was false)");
        }
        break;
      case expect::maybe:
        break;  // at most once: the handler checks that
    }
  }
}

void verify_cond_calls(const call_record& rec) {
  for (cpu_t c = 0; c < rec.run.nr_cpus; ++c) {
    const std::uint32_t n = rec.cond_calls[c].load(std::memory_order_relaxed);
    if (n <= 1) {
      pass(check::cond);
    } else {
      fail(check::cond, rec.describe() + ": the predicate was evaluated " + std::to_string(n) +
                            " times for " + cpu_str(c) + " (once per CPU is the contract)");
    }
  }
}

}  // namespace xcall_torture
