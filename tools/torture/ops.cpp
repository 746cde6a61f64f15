// ops.cpp — each operation kind: how it is called, what the caller knows
// before and after, and which checks it feeds.
//
// Ordering: nothing here synchronizes by itself except the RPC flag (see
// checks.hpp) and the hotplug lock (online.hpp); every other edge between a
// caller and its handlers is the library's, which is what the checks test.
#include "ops.hpp"

#include <chrono>
#include <system_error>
#include <thread>
#include <vector>

#include "host_marks.hpp"
#include "report.hpp"
#include "tally.hpp"
#include "tool_wait.hpp"
#include "watchdog.hpp"
#include "xcall/cpu.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {
namespace {

using std::errc;
using xcall::cpu_t;
using xcall::no_cpu;

std::string describe_op(const run_state& run, op_kind kind, unsigned invoker, std::uint64_t op,
                        cpu_t target, unsigned depth = 0, std::uint64_t sub = 0) {
  return describe_call(run, kind, invoker, op, xcall::this_cpu(), target, depth, sub);
}

/// What a throwing callable throws: the caller catches exactly this.
struct callable_error {
  cpu_t cpu;
};
/// What a throwing predicate throws.
struct predicate_error {
  cpu_t cpu;
};

/// The callable of op_callable(): the tool's function, then (on one CPU,
/// never inside the doorbell handler, where throwing is not safe) a throw.
void callable_body(call_record* rec) {
  handle_call(rec);  // freed_by::caller: the record outlives this
  const cpu_t cpu = xcall::this_cpu();
  if (cpu != rec->throw_cpu || in_doorbell_handler(rec->run)) return;
  // relaxed: the caller reads it after the call, ordered by guarantee 4.
  rec->threw.store(true, std::memory_order_relaxed);
  throw callable_error{cpu};
}

/// The predicate of op_cond_throw(): cond_predicate(), except that it throws
/// for rec->throw_cpu. Runs on the caller's thread.
bool throwing_predicate(cpu_t cpu, void* info) {
  auto* rec = static_cast<call_record*>(info);
  if (cpu == rec->throw_cpu) {
    rec->cond_calls[cpu].fetch_add(1, std::memory_order_relaxed);
    rec->threw.store(true, std::memory_order_relaxed);  // same thread as the reader
    throw predicate_error{cpu};
  }
  return cond_predicate(cpu, info);
}

/// A single call's return against the target's state over the call.
/// Returns whether the call was accepted (the function will run).
bool check_single_result(const run_state& run, const call_window& window, op_kind kind,
                         unsigned invoker, std::uint64_t op, cpu_t target, std::error_code ec) {
  // Built only for a failure message: the common path formats nothing.
  const auto desc = [&] { return describe_op(run, kind, invoker, op, target); };
  if (enomem_allowed(run, ec)) return false;
  if (ec && ec != errc::no_such_device_or_address) {
    fail(check::error_code, desc() + ": returned " + ec.message());
    return false;
  }
  pass(check::error_code);
  const bool accepted = !ec;
  if (!accepted) add(event::enxio);
  if (target >= run.nr_cpus) {
    if (accepted) {
      fail(check::enxio,
           desc() + ": a call to out-of-range CPU " + std::to_string(target) + " was accepted");
    } else {
      pass(check::enxio);
    }
    return accepted;
  }
  if (target == xcall::this_cpu()) {
    if (accepted) {
      pass(check::enxio);
    } else {
      fail(check::enxio, desc() + ": a call to the caller's own CPU returned ENXIO");
    }
    return accepted;
  }
  switch (window.online(target)) {
    case held::set:
      if (accepted) {
        pass(check::enxio);
      } else {
        fail(check::enxio, desc() + ": ENXIO, but the target was online for the whole call");
      }
      break;
    case held::clear:
      if (!accepted) {
        pass(check::enxio);
      } else {
        fail(check::enxio, desc() + ": accepted, but the target was offline for the whole call");
      }
      break;
    case held::changed:
      break;  // either answer is right while it goes up or down
  }
  return accepted;
}

}  // namespace

void probe_call(void* info) noexcept {
  // Async-signal-safe: it may run inside the doorbell handler.
  const auto* run = static_cast<const run_state*>(info);
  const bool in_signal = in_doorbell_handler(*run);
  add(event::probe_ran);
  if (in_signal) add(event::in_signal);
  const cpu_t cpu = xcall::this_cpu();
  if (cpu < run->nr_cpus) {
    pass(check::async);
    if (run->opt.attached) check_where_it_runs(*run, nullptr, "the async probe", in_signal, cpu);
  } else {
    handler_fail(nullptr, "the async probe", in_signal, check::async,
                 "ran on a thread that hosts no CPU", no_cpu, "");
  }
}

invoker::invoker(run_state& run, unsigned id, cpu_t host_cpu)
    : run_(run),
      id_(id),
      host_cpu_(host_cpu),
      rng_(mix_seed(run.opt.seed, id)),
      own_mask_(std::make_unique<live_mask>(run.nr_cpus)),
      mask_(own_mask_.get()),
      private_mask_(run.nr_cpus),
      window_(run.nr_cpus),
      expect_(std::make_unique<expect[]>(run.nr_cpus)),
      own_probe_(probe_call, &run),
      async_csd_(&own_async_),
      probe_csd_(&own_probe_) {
  for (unsigned w : run.opt.weights) weight_total_ += w;
}

invoker::invoker(run_state& run, const nest_origin& origin, activity& slot, nest_limit limit,
                 xcall::call_single_data* async, xcall::call_single_data* probe)
    : run_(run),
      slot_(&slot),
      id_(origin.invoker),
      host_cpu_(no_cpu),
      depth_(origin.depth),
      limit_(limit),
      rng_(origin.seed),
      op_id_(origin.op),
      // A top-level invoker's live mask: the churners keep flipping it.
      mask_(&run.invokers[origin.seed % run.invokers.size()]->mask()),
      private_mask_(run.nr_cpus),
      window_(run.nr_cpus),
      expect_(std::make_unique<expect[]>(run.nr_cpus)),
      async_csd_(async),
      probe_csd_(probe) {
  for (unsigned w : run.opt.weights) weight_total_ += w;
}

bool invoker::take_read() {
  if (depth_ == 0 && host_cpu_ == no_cpu && !from_cpu()) {
    run_.hotplug.read();  // an outside thread: it may block
    return true;
  }
  return run_.hotplug.try_read();
}

op_kind invoker::pick() noexcept {
  std::uint64_t r = rng_.below(weight_total_);
  for (unsigned k = 0; k < kOpKinds; ++k) {
    if (r < run_.opt.weights[k]) return static_cast<op_kind>(k);
    r -= run_.opt.weights[k];
  }
  return op_kind::single;
}

void invoker::run_loop() {
  activity& slot = new_activity("invoker " + std::to_string(id_));
  slot_ = &slot;
  while (!run_.stopping()) {
    if (run_.paused.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    const op_kind kind = pick();
    if (!rng_.one_in(4)) {
      perform(kind);
      continue;
    }
    // Make the call from a CPU: a waiting single call whose function does it.
    const cpu_t cpu = static_cast<cpu_t>(rng_.below(run_.nr_cpus));
    trampoline_arg arg{this, kind, false};
    slot.begin("trampoline", cpu);
    const std::error_code ec = run_.dom->call_function_single(cpu, trampoline, &arg, true);
    slot.end();
    if (ec == errc::no_such_device_or_address) {
      add(event::enxio);
      perform(kind);  // that CPU is offline: from here then
    } else if (!ec && arg.declined) {
      add(event::declined);
      perform(kind);  // it ran inside the doorbell handler: from here then
    } else if (enomem_allowed(run_, ec)) {
      perform(kind);  // nothing was queued: from here then
    } else if (ec) {
      fail(check::error_code, "trampoline to CPU " + std::to_string(cpu) + " of invoker " +
                                  std::to_string(id_) + ": returned " + ec.message());
    }
  }
}

void invoker::run_one() {
  if (slot_ == nullptr) slot_ = &new_activity("host of CPU " + std::to_string(host_cpu_));
  perform(pick());
}

void invoker::run_one_nowait() {
  // The no-wait forms: inside an irq_guard each must succeed (or ENXIO).
  constexpr op_kind kinds[] = {op_kind::single, op_kind::many, op_kind::all,
                               op_kind::async,  op_kind::any,  op_kind::cond};
  const op_kind kind = kinds[rng_.below(std::size(kinds))];
  ++sub_;
  slot_->begin(op_name(kind), xcall::this_cpu());
  add(op_event(kind));
  add(event::from_cpu);
  add(event::nested_ops);
  switch (kind) {
    case op_kind::single:
      op_single(kind, false);
      break;
    case op_kind::many:
      op_multi_exact(kind, false, false);
      break;
    case op_kind::all:
      op_multi_exact(kind, true, false);
      break;
    case op_kind::async:
      op_async();
      break;
    case op_kind::any:
      op_any(false);
      break;
    default:
      op_multi_exact(kind, false, true);
      break;
  }
  slot_->end();
}

void invoker::trampoline(void* arg) noexcept {
  auto* a = static_cast<trampoline_arg*>(arg);
  run_state& run = a->self->run_;
  // A whole operation allocates, locks and prints: not inside the doorbell
  // signal's handler. There it declines (a plain write the waiting caller
  // reads after the call: guarantee 4) and the invoker does it itself.
  const bool in_signal = in_doorbell_handler(run);
  const cpu_t cpu = xcall::this_cpu();
  if (run.opt.attached && cpu < run.nr_cpus) {
    check_where_it_runs(run, nullptr, "a trampoline", in_signal, cpu);
  }
  if (in_signal) {
    add(event::in_signal);
    a->declined = true;
    return;
  }
  host_marks::enter_run(cpu);  // a proxy's trampoline: see host_marks.hpp
  a->self->perform(a->kind);
  host_marks::leave_run(cpu);
}

void invoker::perform(op_kind kind) {
  if (depth_ == 0) {
    ++op_id_;
  } else {
    ++sub_;
    add(event::nested_ops);
  }
  slot_->begin(op_name(kind), xcall::this_cpu());
  add(op_event(kind));
  if (from_cpu()) add(event::from_cpu);
  try {
    dispatch(kind);
  } catch (const std::exception& e) {
    // The calls report errors as codes; an exception out of one (other than
    // the callables' and predicates' own, caught where they are made) is
    // the library breaking its contract.
    fail(check::error_code,
         describe_op(run_, kind, id_, op_id_, no_cpu, depth_, sub_) + ": threw " + e.what());
  }
  slot_->end();
}

void invoker::dispatch(op_kind kind) {
  switch (kind) {
    case op_kind::single:
      op_single(kind, false);
      break;
    case op_kind::single_wait:
      op_single(kind, true);
      break;
    case op_kind::single_rpc:
      op_rpc();
      break;
    case op_kind::many:
      op_multi_exact(kind, false, false);
      break;
    case op_kind::many_wait:
      op_multi(kind, false, false);
      break;
    case op_kind::all:
      op_multi_exact(kind, true, false);
      break;
    case op_kind::all_wait:
      op_multi(kind, true, false);
      break;
    case op_kind::async:
      op_async();
      break;
    case op_kind::any:
      op_any(rng_.coin());
      break;
    case op_kind::cond:
      if (rng_.coin()) {
        op_multi(kind, false, true);
      } else {
        op_multi_exact(kind, false, true);
      }
      break;
    case op_kind::callable:
      op_callable();
      break;
    case op_kind::rendezvous:
      op_rendezvous();
      break;
    case op_kind::cond_throw:
      op_cond_throw();
      break;
    case op_kind::count:
      break;
  }
}

cpu_t invoker::random_target() noexcept {
  if (rng_.one_in(16)) return run_.nr_cpus + static_cast<cpu_t>(rng_.below(4));  // out of range
  return static_cast<cpu_t>(rng_.below(run_.nr_cpus));
}

void invoker::randomize_live_mask() {
  const unsigned shape = static_cast<unsigned>(rng_.below(16));
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
    // Mostly a random mix; now and then all clear or all set.
    const bool want = shape == 0 ? false : shape == 1 ? true : rng_.below(10) < 6;
    if (mask_->try_write(c, want)) add(event::mask_flips);
  }
}

call_record* invoker::record(op_kind kind, bool wait, freed_by who) {
  return new_record(run_, kind, wait, who, id_, op_id_, depth_, sub_);
}

template <class Done>
void invoker::wait_for(Done&& done, const char* what, call_record* rec) {
  // A completion that never comes fails the end checks too: wait on.
  (void)tool_wait(
      run_, rec != nullptr ? check::rpc : check::async, done,
      [&] {
        const std::string desc =
            rec != nullptr ? rec->describe()
                           : describe_op(run_, op_kind::async, id_, op_id_, no_cpu, depth_, sub_);
        return desc + ": still waiting for the " + what + " after " +
               std::to_string(tool_wait_limit(run_).count() / 1000000) + " ms";
      },
      /*give_up=*/false);
}

void invoker::op_single(op_kind kind, bool wait) {
  const cpu_t target = random_target();
  call_record* rec = record(kind, wait, wait ? freed_by::caller : freed_by::handler);
  rec->target = target;
  window_.before(run_, nullptr);
  rec->seal();
  const std::error_code ec = run_.dom->call_function_single(target, handle_call, rec, wait);
  window_.after(run_, nullptr);
  // No wait: once accepted, the record is the handler's (maybe freed already).
  const bool accepted = check_single_result(run_, window_, kind, id_, op_id_, target, ec);
  if (!wait) {
    if (!accepted) free_record(rec);
    return;
  }
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
    expect_[c] = accepted && c == target ? expect::once : expect::never;
  }
  verify_runs(*rec, expect_.get());
  free_record(rec);
}

void invoker::op_rpc() {
  if (!tool_waits()) {
    // Guarded: the target's function may wait for this CPU, which cannot
    // run it; parked: a call to this CPU runs only if a waiter proxies.
    add(event::skipped);
    return;
  }
  const cpu_t target = random_target();
  call_record* rec = record(op_kind::single_rpc, false, freed_by::rpc);
  rec->target = target;
  window_.before(run_, nullptr);
  rec->seal();
  const std::error_code ec = run_.dom->call_function_single(target, handle_call, rec, false);
  window_.after(run_, nullptr);
  if (check_single_result(run_, window_, op_kind::single_rpc, id_, op_id_, target, ec)) {
    // acquire: pairs with the handler's release of done.
    wait_for([rec] { return rec->done.load(std::memory_order_acquire); }, "RPC completion", rec);
    pass(check::rpc);
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
      expect_[c] = c == target ? expect::once : expect::never;
    }
    verify_runs(*rec, expect_.get());
  }
  free_record(rec);
}

void invoker::op_multi(op_kind kind, bool all, bool cond) {
  const bool runs_self = cond || rng_.coin();  // on_each_cpu* vs call_function*
  call_record* rec = record(kind, true, freed_by::caller);
  if (cond) {
    rec->cond_true = std::make_unique<bool[]>(run_.nr_cpus);
    rec->cond_calls = std::make_unique<std::atomic<std::uint32_t>[]>(run_.nr_cpus);
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) rec->cond_true[c] = rng_.coin();
  }
  if (!all) randomize_live_mask();
  const live_mask* mask = all ? nullptr : mask_;
  xcall::domain& dom = *run_.dom;
  window_.before(run_, mask);
  rec->seal();
  std::error_code ec;
  if (all) {
    ec = runs_self ? dom.on_each_cpu(handle_call, rec, true)
                   : dom.call_function(handle_call, rec, true);
  } else if (cond) {
    ec = dom.on_each_cpu_cond_mask(cond_predicate, handle_call, rec, true, mask_->mask());
  } else {
    ec = runs_self ? dom.on_each_cpu_mask(mask_->mask(), handle_call, rec, true)
                   : dom.call_function_many(mask_->mask(), handle_call, rec, true);
  }
  window_.after(run_, mask);
  if (enomem_allowed(run_, ec)) {
    // Failed for want of memory: it must have done nothing.
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) expect_[c] = expect::never;
    verify_runs(*rec, expect_.get());
  } else if (ec) {
    fail(check::error_code, rec->describe() + ": returned " + ec.message());
  } else {
    pass(check::error_code);
    window_.expectations(xcall::this_cpu(), runs_self, rec->cond_true.get(), expect_.get());
    verify_runs(*rec, expect_.get());
    if (cond) verify_cond_calls(*rec);
  }
  free_record(rec);
}

void invoker::op_multi_exact(op_kind kind, bool all, bool cond) {
  // A CPU host may be what a hotplug writer waits for: it only tries.
  if (!take_read()) {
    if (limit_ == nest_limit::guarded) {
      add(event::skipped);  // a waiting call would be EDEADLK here
      return;
    }
    add(event::fallback);
    op_multi(kind, all, cond);
    return;
  }
  const bool runs_self = cond || rng_.coin();
  const cpu_t self = xcall::this_cpu();
  call_record* rec = record(kind, false, freed_by::last_ref);
  if (cond) {
    rec->cond_true = std::make_unique<bool[]>(run_.nr_cpus);
    rec->cond_calls = std::make_unique<std::atomic<std::uint32_t>[]>(run_.nr_cpus);
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) rec->cond_true[c] = rng_.coin();
  }
  if (!all) {
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
      if (rng_.below(10) < 6) {
        private_mask_.set(c);
      } else {
        private_mask_.reset(c);
      }
    }
  }
  rec->expected = std::make_unique<expect[]>(run_.nr_cpus);
  exact_expectations(run_, all ? nullptr : &private_mask_, self, runs_self, rec->cond_true.get(),
                     rec->expected.get());
  int runs = 0;
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) runs += rec->expected[c] == expect::once ? 1 : 0;
  // relaxed: published to the handlers by the call itself, like every field.
  rec->refs.store(runs + 1, std::memory_order_relaxed);
  rec->seal();
  xcall::domain& dom = *run_.dom;
  std::error_code ec;
  if (all) {
    ec = runs_self ? dom.on_each_cpu(handle_call, rec, false)
                   : dom.call_function(handle_call, rec, false);
  } else if (cond) {
    ec = dom.on_each_cpu_cond_mask(cond_predicate, handle_call, rec, false, private_mask_);
  } else {
    ec = runs_self ? dom.on_each_cpu_mask(private_mask_, handle_call, rec, false)
                   : dom.call_function_many(private_mask_, handle_call, rec, false);
  }
  // The predicate ran inside the call; our reference keeps the record.
  if (cond) verify_cond_calls(*rec);
  run_.hotplug.unread();
  if (ec) {
    if (!enomem_allowed(run_, ec))
      fail(check::error_code, rec->describe() + ": returned " + ec.message());
    free_record(rec);  // nothing was queued
    return;
  }
  pass(check::error_code);
  drop_ref(rec);
}

void invoker::op_rendezvous() {
  // The caller waits for functions that wait for each other: not where the
  // tool may not wait, and only with the online set held still, so the
  // targets it expects are exactly the ones that run (rendezvous.hpp).
  if (!tool_waits() || !take_read()) {
    add(event::skipped);
    return;
  }
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
    if (rng_.below(10) < 7) {
      private_mask_.set(c);
    } else {
      private_mask_.reset(c);
    }
  }
  call_record* rec = record(op_kind::rendezvous, true, freed_by::caller);
  rec->expected = std::make_unique<expect[]>(run_.nr_cpus);
  exact_expectations(run_, &private_mask_, xcall::this_cpu(), /*runs_self=*/false, nullptr,
                     rec->expected.get());
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
    rec->rendezvous_of += rec->expected[c] == expect::once ? 1 : 0;
  }
  if (rec->rendezvous_of < 2) {  // nobody to meet
    run_.hotplug.unread();
    free_record(rec);
    add(event::skipped);
    return;
  }
  window_.before(run_, nullptr);
  rec->seal();
  const std::error_code ec =
      run_.dom->call_function_many(private_mask_, handle_call, rec, /*wait=*/true);
  window_.after(run_, nullptr);
  run_.hotplug.unread();
  if (ec) {
    if (!enomem_allowed(run_, ec)) {
      fail(check::error_code, rec->describe() + ": returned " + ec.message());
    }
  } else {
    pass(check::error_code);
    verify_runs(*rec, rec->expected.get());
  }
  free_record(rec);
}

void invoker::op_async() {
  // The main descriptor carries a record its handler frees. Its func/info
  // are ours only while it is not in flight.
  if (async_csd_ == nullptr) {
    add(event::skipped);  // a nested invoker found the pool empty
    return;
  }
  xcall::call_single_data& async_csd = *async_csd_;
  xcall::call_single_data& probe_csd = *probe_csd_;
  if (async_csd.in_flight()) {
    add(event::ebusy);
    if (!tool_waits()) return;  // it may be queued for this very CPU
    wait_for([&async_csd] { return !async_csd.in_flight(); }, "async descriptor", nullptr);
  }
  const cpu_t target = random_target();
  call_record* rec = record(op_kind::async, false, freed_by::handler);
  rec->target = target;
  const auto desc = [&] {
    return describe_op(run_, op_kind::async, id_, op_id_, target, depth_, sub_);
  };
  async_csd.func = handle_call;
  async_csd.info = rec;
  window_.before(run_, nullptr);
  rec->seal();
  std::error_code ec = run_.dom->call_function_single_async(target, async_csd);
  window_.after(run_, nullptr);
  if (ec == errc::device_or_resource_busy) {
    fail(check::async, desc() + ": EBUSY for a descriptor that was not in flight");
    free_record(rec);
  } else if (!check_single_result(run_, window_, op_kind::async, id_, op_id_, target, ec)) {
    free_record(rec);
  } else {
    pass(check::async);
  }

  // The probe descriptor has a fixed function, so it may be sent while it
  // could still be in flight: EBUSY is then the answer, handled by waiting.
  const cpu_t probe_target = random_target();
  for (;;) {
    ec = run_.dom->call_function_single_async(probe_target, probe_csd);
    if (ec != errc::device_or_resource_busy) break;
    add(event::ebusy);
    if (!tool_waits()) return;
    wait_for([&probe_csd] { return !probe_csd.in_flight(); }, "async probe descriptor", nullptr);
  }
  for (int again = 0; again < 2; ++again) {
    if (!ec) {
      add(event::probe_sent);
    } else if (ec == errc::no_such_device_or_address) {
      add(event::enxio);
    } else if (ec == errc::device_or_resource_busy && again == 1) {
      add(event::ebusy);
    } else if (enomem_allowed(run_, ec)) {
      // counted
    } else {
      fail(check::error_code, desc() + ": async probe returned " + ec.message());
    }
    // At once a second time: it is usually still in flight.
    if (again == 0) ec = run_.dom->call_function_single_async(probe_target, probe_csd);
  }
}

void invoker::op_any(bool wait) {
  randomize_live_mask();
  call_record* rec = record(op_kind::any, wait, wait ? freed_by::caller : freed_by::handler);
  window_.before(run_, mask_);
  if (!wait) {
    rec->mask = mask_;
    rec->mask_before = std::make_unique<live_mask::view[]>(run_.nr_cpus);
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) rec->mask_before[c] = window_.mask_view(c);
  }
  const auto desc = [&] {
    return describe_op(run_, op_kind::any, id_, op_id_, no_cpu, depth_, sub_);
  };
  rec->seal();
  const std::error_code ec = run_.dom->call_function_any(mask_->mask(), handle_call, rec, wait);
  window_.after(run_, mask_);
  if (ec && ec != errc::no_such_device_or_address) {
    if (!enomem_allowed(run_, ec)) fail(check::error_code, desc() + ": returned " + ec.message());
    free_record(rec);  // nothing was queued
    return;
  }
  pass(check::error_code);
  // ENXIO is right only if no CPU was in the mask and online all along.
  const cpu_t self = xcall::this_cpu();
  const bool self_held = self != no_cpu && window_.in_mask(self) == held::set;
  cpu_t must = self_held ? self : no_cpu;
  for (cpu_t c = 0; c < run_.nr_cpus && must == no_cpu; ++c) {
    if (c != self && window_.in_mask(c) == held::set && window_.online(c) == held::set) must = c;
  }
  if (ec) {
    add(event::enxio);
    if (must != no_cpu) {
      fail(check::enxio, desc() + ": ENXIO, but CPU " + std::to_string(must) +
                             " was in the mask and online for the whole call");
    } else {
      pass(check::enxio);
    }
  }
  if (!wait) {
    if (ec) free_record(rec);  // never queued; otherwise the handler frees it
    return;
  }
  std::uint32_t total = 0;
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
    total += rec->ran[c].load(std::memory_order_relaxed);
    if (c == self) {
      const held h = window_.in_mask(c);
      expect_[c] = h == held::set ? expect::once : h == held::clear ? expect::never : expect::maybe;
    } else if (self_held || window_.in_mask(c) == held::clear || window_.online(c) == held::clear) {
      expect_[c] = expect::never;  // the caller's own CPU comes first when in the mask
    } else {
      expect_[c] = expect::maybe;
    }
  }
  if (ec) {
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) expect_[c] = expect::never;
  }
  verify_runs(*rec, expect_.get());
  const std::uint32_t want = ec ? 0 : 1;
  if (total == want) {
    pass(check::exactly_once);
  } else {
    fail(check::exactly_once,
         desc() + ": " + std::to_string(total) + " CPUs ran it, expected " + std::to_string(want));
  }
  free_record(rec);
}

void invoker::op_callable() {
  // Four forms, all waiting: single, many, on_each_cpu, on_each_cpu_mask.
  const unsigned form = static_cast<unsigned>(rng_.below(4));
  const op_kind kind = op_kind::callable;
  call_record* rec = record(kind, true, freed_by::caller);
  // One time in three the callable throws on one CPU (if that CPU runs it).
  if (rng_.one_in(3)) rec->throw_cpu = static_cast<cpu_t>(rng_.below(run_.nr_cpus));
  const bool with_mask = form == 1 || form == 3;
  const bool runs_self = form >= 2;
  if (form == 0) {
    rec->target = random_target();
  } else if (with_mask) {
    randomize_live_mask();
  }
  auto body = [rec] { callable_body(rec); };
  xcall::domain& dom = *run_.dom;
  const live_mask* mask = with_mask ? mask_ : nullptr;
  window_.before(run_, mask);
  rec->seal();
  std::error_code ec;
  bool caught = false;
  try {
    switch (form) {
      case 0:
        ec = dom.call_function_single(rec->target, body);
        break;
      case 1:
        ec = dom.call_function_many(mask_->mask(), body);
        break;
      case 2:
        ec = dom.on_each_cpu(body);
        break;
      default:
        ec = dom.on_each_cpu_mask(mask_->mask(), body);
        break;
    }
  } catch (const callable_error& e) {
    caught = true;
    add(event::exceptions);
    if (e.cpu != rec->throw_cpu) {
      fail(check::exception, rec->describe() + ": caught the throw of CPU " +
                                 std::to_string(e.cpu) + ", but only CPU " +
                                 std::to_string(rec->throw_cpu) + " throws");
    }
  }
  window_.after(run_, mask);
  // relaxed: set by the thrower, which the call waited for (guarantee 4).
  const bool threw = rec->threw.load(std::memory_order_relaxed);
  if (caught == threw) {
    pass(check::exception);
  } else {
    fail(check::exception, rec->describe() + (threw ? ": the callable threw on CPU " +
                                                          std::to_string(rec->throw_cpu) +
                                                          " but the call did not rethrow it"
                                                    : ": the call threw, but no callable did"));
  }
  if (form == 0) {
    const bool accepted = check_single_result(run_, window_, kind, id_, op_id_, rec->target, ec);
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
      expect_[c] = accepted && c == rec->target ? expect::once : expect::never;
    }
    verify_runs(*rec, expect_.get());
  } else if (enomem_allowed(run_, ec)) {
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) expect_[c] = expect::never;
    verify_runs(*rec, expect_.get());
  } else if (ec) {
    fail(check::error_code, rec->describe() + ": returned " + ec.message());
  } else {
    pass(check::error_code);
    // A throw does not cut the call short: every target still runs it.
    window_.expectations(xcall::this_cpu(), runs_self, nullptr, expect_.get());
    verify_runs(*rec, expect_.get());
  }
  free_record(rec);
}

void invoker::op_cond_throw() {
  // Exact expectations, as for no-wait multi calls: under the hotplug read
  // lock, with a private mask.
  if (!take_read()) {
    add(event::skipped);
    return;
  }
  const bool wait = limit_ != nest_limit::guarded && rng_.coin();
  const cpu_t self = xcall::this_cpu();
  call_record* rec =
      record(op_kind::cond_throw, wait, wait ? freed_by::caller : freed_by::last_ref);
  rec->cond_true = std::make_unique<bool[]>(run_.nr_cpus);
  rec->cond_calls = std::make_unique<std::atomic<std::uint32_t>[]>(run_.nr_cpus);
  rec->expected = std::make_unique<expect[]>(run_.nr_cpus);
  std::vector<cpu_t> asked;  // the CPUs the library must ask the predicate about
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) {
    rec->cond_true[c] = rng_.coin();
    if (rng_.below(10) < 6) {
      private_mask_.set(c);
      if (c == self || run_.online.stable_online(c)) asked.push_back(c);
    } else {
      private_mask_.reset(c);
    }
  }
  // Mostly a CPU the predicate will be asked about; sometimes any CPU.
  rec->throw_cpu = !asked.empty() && !rng_.one_in(4) ? asked[rng_.below(asked.size())]
                                                     : static_cast<cpu_t>(rng_.below(run_.nr_cpus));
  bool must_throw = false;
  for (cpu_t c : asked) must_throw = must_throw || c == rec->throw_cpu;
  exact_expectations(run_, &private_mask_, self, true, rec->cond_true.get(), rec->expected.get());
  int runs = 0;
  for (cpu_t c = 0; c < run_.nr_cpus; ++c) runs += rec->expected[c] == expect::once ? 1 : 0;
  // relaxed: published to the handlers by the call itself, like every field.
  rec->refs.store(runs + 1, std::memory_order_relaxed);
  rec->seal();
  std::error_code ec;
  bool caught = false;
  try {
    ec = run_.dom->on_each_cpu_cond_mask(throwing_predicate, handle_call, rec, wait, private_mask_);
  } catch (const predicate_error&) {
    caught = true;
    add(event::exceptions);
  }
  run_.hotplug.unread();
  const bool threw = rec->threw.load(std::memory_order_relaxed);  // set on this thread
  if (caught != threw) {
    fail(check::exception,
         rec->describe() +
             (threw ? ": the predicate threw for CPU " + std::to_string(rec->throw_cpu) +
                          " but the call did not pass it on"
                    : ": the call threw, but the predicate did not"));
  } else if (threw != must_throw &&
             !(must_throw && ec == std::errc::not_enough_memory && run_.enomem_ok)) {
    // (A call that could not get its storage returns ENOMEM before it asks
    // any predicate: legal with --fault fail_alloc.)
    fail(check::cond, rec->describe() + ": the predicate was " + (threw ? "" : "not ") +
                          "asked about CPU " + std::to_string(rec->throw_cpu) + ", which was " +
                          (must_throw ? "" : "not ") + "in the mask and online (or the caller)" +
                          (ec ? "; the call returned " + ec.message() : std::string()));
  } else {
    pass(check::exception);
  }
  verify_cond_calls(*rec);
  if (caught) {
    // Every predicate runs before anything is queued: nothing may run, now
    // or later. Checked now, and again once the domain is gone.
    std::uint32_t total = 0;
    for (cpu_t c = 0; c < run_.nr_cpus; ++c) total += rec->ran[c].load(std::memory_order_relaxed);
    if (total == 0) {
      pass(check::exception);
    } else {
      fail(check::exception, rec->describe() + ": " + std::to_string(total) +
                                 " CPUs ran it, although its predicate threw for CPU " +
                                 std::to_string(rec->throw_cpu) +
                                 (rec->throw_cpu == self ? " (the caller's own)" : ""));
    }
    keep_until_end(rec);
    return;
  }
  if (ec) {
    if (!enomem_allowed(run_, ec)) {
      fail(check::error_code, rec->describe() + ": returned " + ec.message());
    }
    if (wait) {
      for (cpu_t c = 0; c < run_.nr_cpus; ++c) expect_[c] = expect::never;
      verify_runs(*rec, expect_.get());
    }
    free_record(rec);  // nothing was queued
    return;
  }
  pass(check::error_code);
  if (wait) {
    verify_runs(*rec, rec->expected.get());
    free_record(rec);
  } else {
    drop_ref(rec);
  }
}

}  // namespace xcall_torture
