// nesting.cpp — the nested steps of functions that act (nesting.hpp).
//
// Ordering: the pool's busy flags and the boomerang's flag (see the header);
// each names its partner below.
#include "nesting.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>
#include <vector>

#include "checks.hpp"
#include "host_marks.hpp"
#include "hotplug.hpp"
#include "ops.hpp"
#include "run_state.hpp"
#include "tally.hpp"
#include "watchdog.hpp"
#include "xcall/cpu.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {
namespace {

using std::errc;
using xcall::cpu_t;
using xcall::no_cpu;

// Frames of nested steps live on this thread right now: a function drained
// while a step waits may act too. One activity slot per frame.
thread_local unsigned t_frames = 0;
constexpr unsigned kMaxFrames = 4 * kMaxNesting + 8;
// Numbers the guarded waiting calls this thread makes (for their names).
thread_local std::uint64_t t_guard_calls = 0;

std::string thread_label() {
  char name[32] = {};
  if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0 || name[0] == '\0') {
    std::snprintf(name, sizeof(name), "thread");
  }
  return std::string(name) + " (tid " + std::to_string(syscall(SYS_gettid)) + ")";
}

activity& frame_slot(unsigned frame) {
  thread_local std::vector<activity*> slots;
  while (slots.size() <= frame) {
    slots.push_back(
        &new_activity(thread_label() + ", nested frame " + std::to_string(slots.size() + 1)));
  }
  return *slots[frame];
}

/// One frame of nested steps: its slot names the chain's top-level operation.
class frame {
 public:
  explicit frame(const call_record& rec) : slot_(frame_slot(t_frames++)) {
    slot_.set_origin(rec.invoker, rec.op_id, rec.depth + 1);
  }
  ~frame() {
    slot_.end();
    slot_.set_origin(0, 0, 0);
    --t_frames;
  }
  frame(const frame&) = delete;
  frame& operator=(const frame&) = delete;
  activity& slot() noexcept { return slot_; }

 private:
  activity& slot_;
};

/// A pool entry for the length of one step (none when all are held).
class lease {
 public:
  explicit lease(run_state& run)
      : pool_(run.pool.get()), index_(pool_ != nullptr ? pool_->claim() : -1) {}
  ~lease() {
    if (index_ >= 0) pool_->give_back(index_);
  }
  lease(const lease&) = delete;
  lease& operator=(const lease&) = delete;
  xcall::call_single_data* async() noexcept {
    return index_ >= 0 ? &pool_->async(index_) : nullptr;
  }
  xcall::call_single_data* probe() noexcept {
    return index_ >= 0 ? &pool_->probe(index_) : nullptr;
  }

 private:
  descriptor_pool* pool_;
  int index_;
};

/// this_cpu() must be what it was before a step (poll, idle, region, guard).
void check_same_cpu(cpu_t before, const char* step) {
  const cpu_t now = xcall::this_cpu();
  if (now == before) {
    pass(check::region);
  } else {
    fail(check::region, std::string("this_cpu() was ") + std::to_string(before) + " before " +
                            step + " inside a function and is " +
                            (now == no_cpu ? std::string("no CPU") : std::to_string(now)) +
                            " after it");
  }
}

nest_kind pick(const run_state& run, rng& r, bool irqs_off) {
  // Hotplug of attached CPUs is attach/detach, which a function must not
  // do. With irqs off (a function run locally by on_each_cpu*, or inside a
  // guard) nothing may wait: no hotplug, no idle_wait(forever) (it would
  // return at once, and the boomerang could never be run here).
  const auto weight = [&run, irqs_off](unsigned k) {
    const auto kind = static_cast<nest_kind>(k);
    if (kind == nest_kind::hotplug && (run.opt.attached || irqs_off)) return 0u;
    if (kind == nest_kind::idle_forever && irqs_off) return 0u;
    return run.opt.nest_weights[k];
  };
  std::uint64_t total = 0;
  for (unsigned k = 0; k < kNestKinds; ++k) total += weight(k);
  std::uint64_t x = r.below(total);
  for (unsigned k = 0; k < kNestKinds; ++k) {
    if (x < weight(k)) return static_cast<nest_kind>(k);
    x -= weight(k);
  }
  return nest_kind::count;  // nothing allowed here
}

void step_call(run_state& run, const nest_origin& origin, activity& slot, nest_limit limit) {
  lease l(run);
  invoker inv(run, origin, slot, limit, l.async(), l.probe());
  if (limit == nest_limit::guarded) {
    inv.run_one_nowait();
  } else {
    inv.run_one();
  }
}

// --- idle-forever: a call sent away that comes back -------------------------

struct boomerang {
  run_state* run;
  cpu_t home;
  std::atomic<bool> back{false};
};

/// Runs on the waiter's CPU (async-signal-safe, like every tool function).
void boomerang_back(void* info) noexcept {
  auto* b = static_cast<boomerang*>(info);
  const cpu_t cpu = xcall::this_cpu();
  if (cpu != b->home) {
    handler_fail(nullptr, "a boomerang call", in_doorbell_handler(*b->run), check::right_cpu,
                 "came back to ", cpu, " instead of its home CPU");
  }
  // release: pairs with the waiter's acquire in step_idle_forever(); `b` may
  // be gone right after.
  b->back.store(true, std::memory_order_release);
}

/// Runs on the other CPU: sends it home (async-signal-safe: a no-wait
/// single call allocates nothing, even in the doorbell handler).
void boomerang_out(void* info) noexcept {
  auto* b = static_cast<boomerang*>(info);
  run_state& run = *b->run;
  const cpu_t home = b->home;
  std::error_code ec;
  // Its call may wait for caller storage and, there, run the calls of the
  // CPUs this thread holds: beneath a proxy run when this is one.
  const cpu_t cpu = xcall::this_cpu();
  host_marks::enter_run(cpu);
  do {
    ec = run.dom->call_function_single(home, boomerang_back, b, false);
  } while (enomem_allowed(run, ec));
  host_marks::leave_run(cpu);
  if (ec) {
    // The waiter hangs now; the hang check names it.
    handler_fail(nullptr, "a boomerang call", in_doorbell_handler(run), check::enxio,
                 "could not be sent back to ", home,
                 ", which was online all along (the hotplug read lock was held)");
  }
}

void step_idle_forever(run_state& run, cpu_t self, rng& r, activity& slot) {
  // Under the read lock no CPU comes or goes: the other CPU will run the
  // boomerang, and its way home will be open.
  if (!run.hotplug.try_read()) {
    add(event::skipped);
    return;
  }
  cpu_t other = no_cpu;
  const auto start = static_cast<cpu_t>(r.below(run.nr_cpus));
  for (cpu_t i = 0; i < run.nr_cpus && other == no_cpu; ++i) {
    const cpu_t c = (start + i) % run.nr_cpus;
    if (c != self && run.online.stable_online(c)) other = c;
  }
  if (other == no_cpu) {
    run.hotplug.unread();
    add(event::skipped);
    return;
  }
  boomerang b{&run, self};
  slot.begin("idle_wait(forever) for a boomerang call through", other);
  std::error_code ec;
  do {
    ec = run.dom->call_function_single(other, boomerang_out, &b, false);
  } while (enomem_allowed(run, ec));
  if (ec) {
    fail(check::enxio, "a boomerang call from CPU " + std::to_string(self) + " to CPU " +
                           std::to_string(other) + ", online all along, returned " + ec.message());
    run.hotplug.unread();
    return;
  }
  // acquire: pairs with the release in boomerang_back().
  while (!b.back.load(std::memory_order_acquire)) {
    // "Forever" returns only once a call ran (the boomerang, or another).
    if (xcall::idle_wait(std::chrono::nanoseconds::max())) {
      pass(check::idle);
    } else {
      add(event::idle_early);
      fail(check::idle, "idle_wait(nanoseconds::max()) on CPU " + std::to_string(self) +
                            " returned with nothing run");
    }
  }
  run.hotplug.unread();
  check_same_cpu(self, "idle_wait(forever)");
}

// --- region ------------------------------------------------------------------

void step_region(run_state& run, const nest_origin& origin, cpu_t self, rng& r, activity& slot) {
  // Parks only the host of a --proxy CPU, on its own thread, outside a
  // guard, not inside its own region already (running its CPU's calls
  // there, it is a proxy of itself), and not beneath a proxy run.
  const bool parks = run.opt.attached && run.opt.proxy && host_marks::mine() == self &&
                     !xcall::irqs_disabled() && !host_marks::in_region() && !host_marks::proxying();
  slot.begin("blocking_region", self);
  if (parks) run.marks.set_parked(self, true);  // before the region: see host_marks.hpp
  {
    xcall::blocking_region region;
    if (parks) host_marks::set_in_region(true);
    const cpu_t inside = xcall::this_cpu();
    if (inside == (parks ? no_cpu : self)) {
      pass(check::region);
    } else {
      fail(check::region, "inside a blocking_region entered from a function on CPU " +
                              std::to_string(self) + ", this_cpu() is " +
                              (inside == no_cpu ? std::string("no CPU") : std::to_string(inside)) +
                              (parks ? " (the host parked: it must be no CPU)"
                                     : " (nothing parked: it must not change)"));
    }
    const nest_limit limit = xcall::irqs_disabled() ? nest_limit::guarded
                             : parks                ? nest_limit::parked
                                                    : nest_limit::none;
    if (r.coin()) {
      // Waiting here, the host may proxy its own parked CPU.
      if (parks) host_marks::set_calling_in_region(true);
      step_call(run, origin, slot, limit);
      if (parks) host_marks::set_calling_in_region(false);
    }
    const timespec ts{0, static_cast<long>(20000 + r.below(180000))};
    slot.begin("sleeping in a blocking_region", self);
    nanosleep(&ts, nullptr);
    if (parks) host_marks::set_in_region(false);
  }
  if (parks) run.marks.set_parked(self, false);  // after it: no proxy runs any more
  check_same_cpu(self, "a blocking_region");
}

// --- guard -------------------------------------------------------------------

// The waiting forms (and, for owned CPUs, hotplug, which waits too).
constexpr const char* kGuardedForms[] = {
    "call_function_single",
    "call_function_many",
    "call_function",
    "call_function_any",
    "on_each_cpu",
    "on_each_cpu_mask",
    "on_each_cpu_cond_mask",
    "call_function_single (callable)",
    "call_function_many (callable)",
    "on_each_cpu (callable)",
    "on_each_cpu_mask (callable)",
    "cpu_down",
    "cpu_up",
};
constexpr op_kind kGuardedKinds[] = {
    op_kind::single_wait, op_kind::many_wait, op_kind::all_wait, op_kind::any,
    op_kind::all_wait,    op_kind::many_wait, op_kind::cond,     op_kind::callable,
    op_kind::callable,    op_kind::callable,  op_kind::callable, op_kind::count,
    op_kind::count,
};
constexpr unsigned kGuardedHotplugForms = 2;  // the last ones

/// A waiting call inside an irq_guard: EDEADLK at once, nothing run.
void guarded_waiting_call(run_state& run, const nest_origin& origin, cpu_t self, rng& r,
                          activity& slot) {
  const auto forms =
      std::size(kGuardedForms) - (run.opt.attached || run.nr_cpus < 2 ? kGuardedHotplugForms : 0);
  const auto form = static_cast<unsigned>(r.below(forms));
  const op_kind kind =
      kGuardedKinds[form] == op_kind::count ? op_kind::all_wait : kGuardedKinds[form];
  call_record* rec = new_record(run, kind, true, freed_by::caller, origin.invoker, origin.op,
                                origin.depth, ++t_guard_calls);
  xcall::cpumask mask(run.nr_cpus);
  for (cpu_t c = 0; c < run.nr_cpus; ++c) {
    if (r.coin()) mask.set(c);
  }
  if (form == 6) {
    rec->cond_true = std::make_unique<bool[]>(run.nr_cpus);
    rec->cond_calls = std::make_unique<std::atomic<std::uint32_t>[]>(run.nr_cpus);
    for (cpu_t c = 0; c < run.nr_cpus; ++c) rec->cond_true[c] = true;
  }
  const auto target = static_cast<cpu_t>(r.below(run.nr_cpus));
  const cpu_t other = (self + 1 + static_cast<cpu_t>(r.below(run.nr_cpus - 1))) % run.nr_cpus;
  std::atomic<unsigned> callable_runs{0};
  auto body = [&callable_runs] { callable_runs.fetch_add(1, std::memory_order_relaxed); };
  xcall::domain& dom = *run.dom;
  slot.begin("waiting call inside an irq_guard", self);
  rec->seal();
  std::error_code ec;
  switch (form) {
    case 0:
      ec = dom.call_function_single(target, handle_call, rec, true);
      break;
    case 1:
      ec = dom.call_function_many(mask, handle_call, rec, true);
      break;
    case 2:
      ec = dom.call_function(handle_call, rec, true);
      break;
    case 3:
      ec = dom.call_function_any(mask, handle_call, rec, true);
      break;
    case 4:
      ec = dom.on_each_cpu(handle_call, rec, true);
      break;
    case 5:
      ec = dom.on_each_cpu_mask(mask, handle_call, rec, true);
      break;
    case 6:
      ec = dom.on_each_cpu_cond_mask(cond_predicate, handle_call, rec, true, mask);
      break;
    case 7:
      ec = dom.call_function_single(target, body);
      break;
    case 8:
      ec = dom.call_function_many(mask, body);
      break;
    case 9:
      ec = dom.on_each_cpu(body);
      break;
    case 10:
      ec = dom.on_each_cpu_mask(mask, body);
      break;
    case 11:
      ec = dom.cpu_down(other);
      break;
    default:
      ec = dom.cpu_up(other);
      break;
  }

  const std::string what = rec->describe() + " (" + kGuardedForms[form] + ", wait)";
  if (ec == errc::resource_deadlock_would_occur) {
    pass(check::deadlock);
  } else {
    fail(check::deadlock, what + ": returned '" + (ec ? ec.message() : std::string("success")) +
                              "' inside an irq_guard; a waiting call there must fail at once "
                              "with EDEADLK");
  }
  // It failed at once: nothing may have run, here or anywhere.
  unsigned runs = callable_runs.load(std::memory_order_relaxed);
  for (cpu_t c = 0; c < run.nr_cpus; ++c) runs += rec->ran[c].load(std::memory_order_relaxed);
  if (runs == 0 || ec != errc::resource_deadlock_would_occur) {
    pass(check::deadlock);
  } else {
    fail(check::deadlock,
         what + ": failed with EDEADLK, but " + std::to_string(runs) + " CPUs ran it");
  }
  free_record(rec);
}

void step_guard(run_state& run, const nest_origin& origin, cpu_t self, rng& r, activity& slot) {
  {
    xcall::irq_guard guard;
    if (xcall::irqs_disabled()) {
      pass(check::deadlock);
    } else {
      fail(check::deadlock,
           "irqs_disabled() is false inside an irq_guard on CPU " + std::to_string(self));
    }
    if (r.coin()) {
      guarded_waiting_call(run, origin, self, r, slot);
    } else {
      step_call(run, origin, slot, nest_limit::guarded);  // no-wait: must work
    }
    slot.begin("ending an irq_guard (runs what arrived)", self);
  }
  check_same_cpu(self, "an irq_guard");
}

// --- hotplug -----------------------------------------------------------------

void step_hotplug(run_state& run, cpu_t self, rng& r, activity& slot) {
  xcall::domain& dom = *run.dom;
  if (run.nr_cpus < 2 || !run.hotplug.try_write()) {
    add(event::skipped);  // a CPU host never blocks on the hotplug lock
    return;
  }
  struct unwrite_at_end {
    hotplug_lock& lock;
    ~unwrite_at_end() { lock.unwrite(); }
  } unlock{run.hotplug};
  if (r.one_in(4)) {
    // Its own CPU: it cannot go down while this thread runs a function on
    // it (EDEADLK); coming up, it is up already (success, and still online).
    // Under the write lock too: a request, even for itself, is the latest
    // one, and would override a transition in progress.
    const bool down = r.coin();
    slot.begin(down ? "cpu_down of its own CPU" : "cpu_up of its own CPU", self);
    const std::error_code ec = down ? dom.cpu_down(self) : dom.cpu_up(self);
    const bool ok = down ? ec == errc::resource_deadlock_would_occur : !ec;
    if (ok && dom.cpu_online(self) == run.online.stable_online(self)) {
      pass(check::deadlock);
    } else {
      fail(check::deadlock, std::string(down ? "cpu_down(" : "cpu_up(") + std::to_string(self) +
                                ") from a function on that CPU returned '" +
                                (ec ? ec.message() : std::string("success")) + "'" +
                                (ok     ? " but changed whether it is online"
                                 : down ? "; expected EDEADLK"
                                        : "; expected success"));
    }
    return;
  }
  // Half the time a CPU this thread is already taking up or down (the
  // composition a per-CPU hotplug mutex held across the wait deadlocks).
  cpu_t cpu = r.coin() ? transition_in_progress(r) : no_cpu;
  const bool again = cpu != no_cpu && cpu != self;
  if (!again) cpu = (self + 1 + static_cast<cpu_t>(r.below(run.nr_cpus - 1))) % run.nr_cpus;
  const bool down = again ? r.coin() : run.online.stable_online(cpu);
  if (!hotplug_step(run, cpu, down, slot)) add(event::skipped);
}

void step_idle(cpu_t self, rng& r, activity& slot, bool irqs_off) {
  slot.begin("idle_wait (short)", self);
  const auto timeout = std::chrono::microseconds(r.below(300));
  const auto start = std::chrono::steady_clock::now();
  const bool ran = xcall::idle_wait(timeout);
  if (irqs_off) {
    // Inside an irq_guard there is nothing it could run: false, at once.
    const auto took = std::chrono::steady_clock::now() - start;
    if (!ran && took < timeout + std::chrono::milliseconds(50)) {
      pass(check::idle);
    } else {
      fail(check::idle, "idle_wait() inside an irq_guard on CPU " + std::to_string(self) +
                            (ran ? " ran calls" : " did not return at once"));
    }
  }
  check_same_cpu(self, "idle_wait()");
}

void step(run_state& run, nest_kind kind, const nest_origin& origin, cpu_t self, rng& r,
          activity& slot, bool irqs_off) {
  const nest_limit limit = irqs_off ? nest_limit::guarded : nest_limit::none;
  switch (kind) {
    case nest_kind::call:
      step_call(run, origin, slot, limit);
      break;
    case nest_kind::poll:
      slot.begin("poll", self);
      xcall::poll();
      check_same_cpu(self, "poll()");
      break;
    case nest_kind::idle:
      step_idle(self, r, slot, irqs_off);
      break;
    case nest_kind::idle_forever:
      step_idle_forever(run, self, r, slot);
      break;
    case nest_kind::region:
      step_region(run, origin, self, r, slot);
      break;
    case nest_kind::guard:
      step_guard(run, origin, self, r, slot);
      break;
    case nest_kind::hotplug:
      step_hotplug(run, self, r, slot);
      break;
    case nest_kind::count:
      break;
  }
}

}  // namespace

descriptor_pool::descriptor_pool(run_state& run, unsigned entries)
    : entries_(std::make_unique<entry[]>(entries)), n_(entries) {
  for (unsigned i = 0; i < n_; ++i) {
    entries_[i].probe.func = probe_call;  // before any thread can claim it
    entries_[i].probe.info = &run;
  }
}

int descriptor_pool::claim() noexcept {
  for (unsigned i = 0; i < n_; ++i) {
    // acquire: pairs with the release in give_back(): the last holder's
    // writes to the descriptors come first.
    if (!entries_[i].busy.exchange(true, std::memory_order_acquire)) return static_cast<int>(i);
  }
  return -1;
}

void descriptor_pool::give_back(int index) noexcept {
  // release: pairs with the acquire in claim().
  entries_[index].busy.store(false, std::memory_order_release);
}

void maybe_act(const call_record& rec, cpu_t cpu) {
  run_state& run = rec.run;
  const torture_options& o = run.opt;
  if (o.nesting == 0 || rec.depth >= o.nesting || cpu >= run.nr_cpus || run.stopping()) return;
  // Frames on this thread are bounded by the depth, unless the library runs
  // one call again inside its own function (a nested drain re-running it):
  // then at-most-once reports it, and this keeps it from growing the stack
  // until the thread overflows.
  if (t_frames >= kMaxFrames) return;
  // From the record and the CPU: a rerun makes the same choices for it.
  rng r(mix_seed(rec.expected_stamp(), 0x4e5700000ull + cpu));
  if (!r.one_in(o.nest_one_in)) return;
  // A function run locally by on_each_cpu* (or a single call to its own
  // CPU) runs inside an irq_guard, as the kernel runs it with irqs off.
  const bool irqs_off = xcall::irqs_disabled();
  const nest_kind kind = pick(run, r, irqs_off);
  if (kind == nest_kind::count) return;
  frame f(rec);
  add(nest_event(kind));
  const nest_origin origin{rec.invoker, rec.op_id, rec.depth + 1, r.next()};
  try {
    step(run, kind, origin, cpu, r, f.slot(), irqs_off);
  } catch (const std::exception& e) {
    fail(check::error_code,
         rec.describe() + ": a nested " + nest_name(kind) + " step threw " + e.what());
  }
}

}  // namespace xcall_torture
