// domain_test.cpp — xcall::domain: every call form runs on exactly the CPUs
// it must, from every kind of caller; every error of the contract; hotplug;
// the callable forms' exceptions; destruction. Every test that builds a
// domain runs against both engines (xcall::engine::percpu and ::classic).
//
// The world of most tests: 4 CPUs, CPU 3 offline, so online = {0, 1, 2}.
// A caller is either an outside thread, an attached thread hosting CPU 1, or a
// handler running on owned CPU 1. Handlers record this_cpu() in a run_log.
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "call_forms.hpp"
#include "test_support.hpp"
#include "xcall/cpu.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::call_single_data;
using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;
using xcall::no_cpu;
using xcall_test::attached_domain_options;
using xcall_test::call_in_form;
using xcall_test::eventually;
using xcall_test::eventually_polling;
using xcall_test::form;
using xcall_test::host_thread;
using xcall_test::kAllForms;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;
using xcall_test::to_string;
using xcall_test::waits;

const std::error_code kOk{};
const std::error_code kNxio = std::make_error_code(std::errc::no_such_device_or_address);
const std::error_code kInval = std::make_error_code(std::errc::invalid_argument);
const std::error_code kBusy = std::make_error_code(std::errc::device_or_resource_busy);
const std::error_code kDeadlk = std::make_error_code(std::errc::resource_deadlock_would_occur);
const std::error_code kNotsup = std::make_error_code(std::errc::operation_not_supported);

constexpr cpu_t kN = 4;
constexpr cpu_t kSelf = 1;     // the CPU a hosting caller hosts
constexpr cpu_t kOffline = 3;  // offline in every world

// ---------------------------------------------------------------------------
// Worlds: a domain plus a caller context.

enum class caller_kind { outside, attached, handler };

const char* name_of(caller_kind k) {
  switch (k) {
    case caller_kind::outside: return "outside";
    case caller_kind::attached: return "attached";
    case caller_kind::handler: return "handler";
  }
  return "?";
}

// Builds the world for `kind` and runs body(d, self, in_caller), where
// in_caller(fn) runs fn() as the caller: on the body thread (outside), on the
// body thread hosting CPU 1 (attached), or in a handler on owned CPU 1.
template <class Body>
void with_world(caller_kind kind, xcall::engine e, Body&& body) {
  switch (kind) {
    case caller_kind::outside: {
      domain d(owned_options(kN, e));
      ASSERT_EQ(d.cpu_down(kOffline), kOk);
      body(d, no_cpu, [](auto&& fn) { fn(); });
      break;
    }
    case caller_kind::attached: {
      domain d(attached_domain_options(kN, e));
      host_thread h0(d, 0);
      host_thread h2(d, 2);
      auto att = d.attach(kSelf);
      body(d, kSelf, [](auto&& fn) { fn(); });
      break;
    }
    case caller_kind::handler: {
      domain d(owned_options(kN, e));
      ASSERT_EQ(d.cpu_down(kOffline), kOk);
      body(d, kSelf, [&d](auto&& fn) {
        bool ran = false;
        ASSERT_EQ(d.call_function_single(kSelf, [&] {
          ran = true;
          fn();
        }),
                  kOk);
        ASSERT_TRUE(ran);
      });
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// The call forms (xcall_test::form, call_forms.hpp) by the CPUs they target

enum class shape { single, mask, all };

shape shape_of(form f) {
  switch (f) {
    case form::single_wait:
    case form::single_nowait:
    case form::single_async:
    case form::fn_single:
      return shape::single;
    case form::function_wait:
    case form::function_nowait:
    case form::each_wait:
    case form::each_nowait:
    case form::fn_each:
      return shape::all;
    default:
      return shape::mask;
  }
}

// cond of on_each_cpu_cond_mask: true for every CPU but 0; records where and
// how often it was evaluated.
struct cond_log : run_log {
  cond_log() : run_log(kN), cond_calls(kN) {}
  std::vector<std::atomic<int>> cond_calls;
  std::atomic<int> cond_off_caller{0};
  void reset_cond() {
    for (auto& c : cond_calls) c.store(0);
    cond_off_caller.store(0);
  }
  static bool cond(cpu_t cpu, void* info) noexcept {
    auto* self = static_cast<cond_log*>(static_cast<run_log*>(info));
    if (std::this_thread::get_id() != self->caller) self->cond_off_caller.fetch_add(1);
    if (cpu < kN) self->cond_calls[cpu].fetch_add(1);
    return cpu != 0;
  }
};

// Expected runs per CPU for every form but any. online = {0,1,2}.
std::vector<int> expected_runs(form f, cpu_t self, cpu_t target, const cpumask& mask) {
  std::vector<int> e(kN, 0);
  auto online = [](cpu_t c) { return c != kOffline; };
  auto in_mask = [&](cpu_t c) { return c < mask.size() && mask.test(c); };
  for (cpu_t c = 0; c < kN; ++c) {
    switch (shape_of(f)) {
      case shape::single:
        e[c] = (c == target);
        break;
      case shape::all:
        e[c] = online(c) &&
               (c != self || f == form::each_wait || f == form::each_nowait || f == form::fn_each);
        break;
      case shape::mask: {
        const bool runs_self = f == form::each_mask_wait || f == form::each_mask_nowait ||
                               f == form::cond_wait || f == form::cond_nowait ||
                               f == form::fn_each_mask;
        e[c] = online(c) && in_mask(c) && (c != self || runs_self);
        if (f == form::cond_wait || f == form::cond_nowait) e[c] = e[c] && c != 0;
        break;
      }
    }
  }
  return e;
}

struct result {
  std::error_code ec;
  std::vector<int> at_return;  // per-CPU runs right when the call returned
  int self_runs_on_caller = 0;
  int self_irqs_off = 0;
};

// One invocation, made in the caller's context.
result invoke_once(domain& d, form f, cpu_t self, cpu_t target, const cpumask& mask,
                   cond_log& log, call_single_data& csd) {
  log.reset();
  log.reset_cond();
  result r;
  r.ec = call_in_form(d, f,
                      {.target = target,
                       .mask = mask,
                       .func = &run_log::record,
                       .info = static_cast<run_log*>(&log),
                       .cond = &cond_log::cond,
                       .csd = &csd});
  r.at_return = log.snapshot();
  r.self_runs_on_caller = log.on_caller.load();
  r.self_irqs_off = self < kN ? log.irqs_off[self].load() : 0;
  EXPECT_EQ(xcall::this_cpu(), self) << "the caller context changed CPU";
  return r;
}

int sum(const std::vector<int>& v) {
  int s = 0;
  for (int x : v) s += x;
  return s;
}

// Waits for a no-wait call to finish: the total reaches `expected`; then
// gives a late duplicate a moment to show up.
void settle(run_log& log, int expected) {
  EXPECT_TRUE(eventually_polling([&] { return log.count() >= expected; }))
      << "a no-wait call did not complete: " << to_string(log.snapshot());
  std::this_thread::sleep_for(2ms);
  xcall::poll();
}

struct form_case {
  form f;
  caller_kind k;
  xcall::engine e;
};

// gtest prints a case as "{single_wait, outside, percpu}".
void PrintTo(const form_case& c, std::ostream* os) {
  *os << '{' << name_of(c.f) << ", " << name_of(c.k) << ", " << xcall_test::engine_name(c.e)
      << '}';
}

std::string case_name(const testing::TestParamInfo<form_case>& info) {
  return std::string(name_of(info.param.f)) + "_from_" + name_of(info.param.k) + "_" +
         xcall_test::engine_name(info.param.e);
}

std::vector<form_case> all_cases() {
  std::vector<form_case> v;
  for (auto e : xcall_test::kEngines) {
    for (auto k : {caller_kind::outside, caller_kind::attached, caller_kind::handler}) {
      for (form f : kAllForms) v.push_back({f, k, e});
    }
  }
  return v;
}

class CallFormTest : public testing::TestWithParam<form_case> {};

// Checks one invocation's outcome against the expected per-CPU runs.
void check_runs(const result& r, cond_log& log, form f, cpu_t self,
                const std::vector<int>& expected) {
  ASSERT_EQ(r.ec, kOk);
  if (waits(f)) {
    EXPECT_EQ(r.at_return, expected) << "a waiting call returned before every target ran";
  } else {
    settle(log, sum(expected));
  }
  EXPECT_EQ(log.snapshot(), expected) << "ran on the wrong CPUs";
  EXPECT_EQ(log.stray.load(), 0) << "ran on a thread that hosts no CPU";
  if (self == no_cpu) {
    EXPECT_EQ(log.on_caller.load(), 0) << "ran on the outside caller";
  } else {
    // What ran on the caller's own CPU ran locally, on the caller's thread,
    // with irqs soft-disabled, and before the call returned (even without
    // wait: the local part is synchronous, as in the kernel).
    EXPECT_EQ(log.on_caller.load(), expected[self]) << "self runs must be local";
    if (f != form::single_async) {
      EXPECT_EQ(r.at_return[self], expected[self]) << "the local run must be done at return";
      EXPECT_EQ(r.self_irqs_off, expected[self]) << "the local run must have irqs disabled";
    }
  }
  if (f == form::cond_wait || f == form::cond_nowait) {
    EXPECT_EQ(log.cond_off_caller.load(), 0) << "cond must be evaluated by the caller";
    for (cpu_t c = 0; c < kN; ++c) {
      EXPECT_LE(log.cond_calls[c].load(), 1) << "cond evaluated twice for CPU " << c;
      if (expected[c]) {
        EXPECT_EQ(log.cond_calls[c].load(), 1) << "cond not evaluated for " << c;
      }
    }
  }
}

TEST_P(CallFormTest, RunsOnExactlyTheCpusItMust) {
  const form f = GetParam().f;
  const caller_kind k = GetParam().k;
  const xcall::engine e = GetParam().e;
  run_with_deadline(kUnitDeadline, name_of(f), [&] {
    with_world(k, e, [&](domain& d, cpu_t self, auto in_caller) {
      cond_log log;
      call_single_data csd;
      std::vector<cpumask> masks;
      std::vector<cpu_t> targets;
      switch (shape_of(f)) {
        case shape::single:
          targets = {0, 1, 2};
          masks.push_back(cpumask(kN));
          break;
        case shape::all:
          targets = {no_cpu};
          masks.push_back(cpumask(kN));
          break;
        case shape::mask: {
          targets = {no_cpu};
          masks.push_back(make_mask(kN, {0, 1, 3}));
          masks.push_back(make_mask(kN, {2, 3}));
          masks.push_back(make_mask(kN, {0, 1, 2, 3}));
          masks.push_back(make_mask(kN, {1}));
          masks.push_back(make_mask(kN, {}));
          masks.push_back(make_mask(kN, {3}));
          cpumask big(kN + 100);  // larger than nr_cpu_ids(): the extra bits name no CPU
          big.set_all();
          masks.push_back(big);
          break;
        }
      }
      for (const cpumask& mask : masks) {
        for (cpu_t target : targets) {
          SCOPED_TRACE(testing::Message() << "target=" << target << " mask=" << [&] {
            std::string s;
            for (cpu_t c : mask) s += std::to_string(c) + ",";
            return s;
          }());
          result r;
          in_caller([&] { r = invoke_once(d, f, self, target, mask, log, csd); });
          if (f == form::any_wait || f == form::any_nowait) {
            // One online CPU of the mask, the caller's own first.
            cpumask candidates(kN);
            for (cpu_t c = 0; c < kN; ++c) {
              if (mask.test(c) && c != kOffline) candidates.set(c);
            }
            if (candidates.none()) {
              EXPECT_EQ(r.ec, kNxio) << "any with no online CPU in the mask";
              EXPECT_EQ(log.count(), 0);
              continue;
            }
            ASSERT_EQ(r.ec, kOk);
            if (!waits(f)) settle(log, 1);
            EXPECT_EQ(log.count(), 1) << "any ran " << log.count() << " times";
            std::vector<int> got = log.snapshot();
            cpu_t ran_on = no_cpu;
            for (cpu_t c = 0; c < kN; ++c) {
              if (got[c]) ran_on = c;
            }
            ASSERT_NE(ran_on, no_cpu);
            EXPECT_TRUE(candidates.test(ran_on)) << "any ran on CPU " << ran_on;
            if (self != no_cpu && candidates.test(self)) {
              EXPECT_EQ(ran_on, self) << "any must prefer the caller's own CPU";
              EXPECT_EQ(r.at_return[self], 1);
              EXPECT_EQ(r.self_irqs_off, 1);
            }
            if (self == no_cpu) {
              EXPECT_EQ(log.on_caller.load(), 0);
            }
            continue;
          }
          check_runs(r, log, f, self, expected_runs(f, self, target, mask));
          if (f == form::single_async) {
            EXPECT_TRUE(eventually([&] { return !csd.in_flight(); }));
          }
        }
      }
      // Flush: a waiting call everywhere, then nothing more may show up.
      const int total = log.count();
      in_caller([&] { EXPECT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk); });
      std::this_thread::sleep_for(2ms);
      EXPECT_EQ(log.count(), total) << "a call ran again after it completed";
    });
  });
}

INSTANTIATE_TEST_SUITE_P(EveryFormAndCaller, CallFormTest, testing::ValuesIn(all_cases()),
                         case_name);

// ---------------------------------------------------------------------------
// Every test below runs once per engine (Suite.Test/percpu, Suite.Test/classic):
// errors, empty target sets, hotplug, callables and destruction all go through
// the engine that queues multi-CPU calls or takes a CPU offline.

class DomainErrorTest : public xcall_test::engine_test {};
class DomainTest : public xcall_test::engine_test {};
class HotplugTest : public xcall_test::engine_test {};
class CallableTest : public xcall_test::engine_test {};
class DestructionTest : public xcall_test::engine_test {};

XCALL_TEST_ON_EVERY_ENGINE(DomainErrorTest);
XCALL_TEST_ON_EVERY_ENGINE(DomainTest);
XCALL_TEST_ON_EVERY_ENGINE(HotplugTest);
XCALL_TEST_ON_EVERY_ENGINE(CallableTest);
XCALL_TEST_ON_EVERY_ENGINE(DestructionTest);

// ---------------------------------------------------------------------------
// Errors: ENXIO

TEST_P(DomainErrorTest, SingleToAnOutOfRangeCpuIsNxio) {
  run_with_deadline(kUnitDeadline, "ENXIO range", [&] {
    run_log log(kN);
    domain d(owned_options(kN, engine()));
    log.reset();
    for (cpu_t cpu : {kN, kN + 1, 64u, xcall::kMaxCpus, no_cpu}) {
      EXPECT_EQ(d.call_function_single(cpu, &run_log::record, &log, true), kNxio) << cpu;
      EXPECT_EQ(d.call_function_single(cpu, &run_log::record, &log, false), kNxio) << cpu;
      EXPECT_EQ(d.call_function_single(cpu, [&] { log.record_here(); }), kNxio) << cpu;
    }
    EXPECT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
    EXPECT_EQ(log.count(), 0);
  });
}

TEST_P(DomainErrorTest, SingleToAnOfflineCpuIsNxio) {
  run_with_deadline(kUnitDeadline, "ENXIO offline", [&] {
    {
      domain d(owned_options(kN, engine()));
      ASSERT_EQ(d.cpu_down(2), kOk);
      run_log log(kN);
      log.reset();
      EXPECT_EQ(d.call_function_single(2, &run_log::record, &log, true), kNxio);
      EXPECT_EQ(d.call_function_single(2, &run_log::record, &log, false), kNxio);
      EXPECT_EQ(d.call_function_single(2, [&] { log.record_here(); }), kNxio);
      EXPECT_EQ(log.count(), 0);
    }
    {
      run_log log(kN);
      domain d(attached_domain_options(kN, engine()));  // nothing attached: every CPU offline
      log.reset();
      for (cpu_t c = 0; c < kN; ++c) {
        EXPECT_EQ(d.call_function_single(c, &run_log::record, &log, true), kNxio);
        EXPECT_EQ(d.call_function_single(c, &run_log::record, &log, false), kNxio);
      }
      host_thread h(d, 0);
      EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kNxio);
      EXPECT_EQ(d.call_function_single(0, &run_log::record, &log, true), kOk);
      EXPECT_EQ(log.at(0), 1);
      EXPECT_EQ(log.count(), 1);
    }
  });
}

TEST_P(DomainErrorTest, AnyWithNoOnlineCpuInTheMaskIsNxio) {
  run_with_deadline(kUnitDeadline, "ENXIO any", [&] {
    domain d(owned_options(kN, engine()));
    ASSERT_EQ(d.cpu_down(2), kOk);
    ASSERT_EQ(d.cpu_down(3), kOk);
    run_log log(kN);
    log.reset();
    for (bool wait : {true, false}) {
      EXPECT_EQ(d.call_function_any(make_mask(kN, {2, 3}), &run_log::record, &log, wait), kNxio);
      EXPECT_EQ(d.call_function_any(make_mask(kN, {}), &run_log::record, &log, wait), kNxio);
      cpumask big(kN + 64);
      big.set(kN + 3);  // a bit past nr_cpu_ids() is no CPU
      big.set(3);
      EXPECT_EQ(d.call_function_any(big, &run_log::record, &log, wait), kNxio);
    }
    EXPECT_EQ(d.call_function_any(make_mask(kN, {2, 3, 0}), &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(0), 1);
    EXPECT_EQ(log.count(), 1);
  });
}

TEST_P(DomainErrorTest, CpuDownAndUpOutOfRangeAreNxio) {
  domain d(owned_options(2, engine()));
  for (cpu_t cpu : {2u, 100u, no_cpu}) {
    EXPECT_EQ(d.cpu_down(cpu), kNxio) << cpu;
    EXPECT_EQ(d.cpu_up(cpu), kNxio) << cpu;
  }
  EXPECT_EQ(d.online_mask().count(), 2u);
}

TEST_P(DomainErrorTest, AttachOutOfRangeIsNxio) {
  run_with_deadline(kUnitDeadline, "attach ENXIO", [&] {
    domain d(attached_domain_options(2, engine()));
    try {
      auto att = d.attach(2);
      ADD_FAILURE() << "attach(2) of a 2-CPU domain succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), kNxio) << e.what();
    }
    EXPECT_EQ(xcall::this_cpu(), no_cpu);
  });
}

// ---------------------------------------------------------------------------
// Errors: EINVAL

TEST_P(DomainErrorTest, NullFuncIsInvalidForEveryForm) {
  run_with_deadline(kUnitDeadline, "EINVAL null func", [&] {
    domain d(owned_options(kN, engine()));
    cpumask all(kN);
    all.set_all();
    int info = 0;
    for (bool wait : {true, false}) {
      SCOPED_TRACE(wait ? "wait" : "no wait");
      EXPECT_EQ(d.call_function_single(0, nullptr, &info, wait), kInval) << "single";
      EXPECT_EQ(d.call_function_many(all, nullptr, &info, wait), kInval) << "many";
      EXPECT_EQ(d.call_function(nullptr, &info, wait), kInval) << "call_function";
      EXPECT_EQ(d.call_function_any(all, nullptr, &info, wait), kInval) << "any";
      EXPECT_EQ(d.on_each_cpu(nullptr, &info, wait), kInval) << "on_each_cpu";
      EXPECT_EQ(d.on_each_cpu_mask(all, nullptr, &info, wait), kInval) << "on_each_cpu_mask";
      EXPECT_EQ(d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, nullptr, &info, wait,
                                        all),
                kInval)
          << "on_each_cpu_cond_mask";
    }
    call_single_data csd;
    EXPECT_EQ(d.call_function_single_async(0, csd), kInval) << "single_async";
  });
}

TEST_P(DomainErrorTest, NullFuncIsInvalidFromAHost) {
  run_with_deadline(kUnitDeadline, "EINVAL null func host", [&] {
    domain d(attached_domain_options(2, engine()));
    host_thread h(d, 1);
    auto att = d.attach(0);
    cpumask all(2);
    all.set_all();
    // Even for the caller's own CPU, where nothing would be queued.
    EXPECT_EQ(d.call_function_single(0, nullptr, nullptr, true), kInval);
    EXPECT_EQ(d.on_each_cpu(nullptr, nullptr, false), kInval);
    EXPECT_EQ(d.on_each_cpu_mask(make_mask(2, {0}), nullptr, nullptr, true), kInval);
    EXPECT_EQ(d.call_function_any(all, nullptr, nullptr, true), kInval);
  });
}

TEST_P(DomainErrorTest, MaskSmallerThanNrCpuIdsIsInvalid) {
  run_with_deadline(kUnitDeadline, "EINVAL small mask", [&] {
    run_log log(kN);
    domain d(owned_options(kN, engine()));
    log.reset();
    auto rec = &run_log::record;
    auto lambda = [&] { log.record_here(); };
    for (cpu_t size : {0u, 1u, kN - 1}) {
      SCOPED_TRACE(testing::Message() << "mask size " << size);
      cpumask small(size);
      small.set_all();
      for (bool wait : {true, false}) {
        EXPECT_EQ(d.call_function_many(small, rec, &log, wait), kInval) << "many";
        EXPECT_EQ(d.call_function_any(small, rec, &log, wait), kInval) << "any";
        EXPECT_EQ(d.on_each_cpu_mask(small, rec, &log, wait), kInval) << "on_each_cpu_mask";
        EXPECT_EQ(d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, rec, &log, wait,
                                          small),
                  kInval)
            << "on_each_cpu_cond_mask";
      }
      EXPECT_EQ(d.call_function_many(small, lambda), kInval) << "callable many";
      EXPECT_EQ(d.on_each_cpu_mask(small, lambda), kInval) << "callable on_each_cpu_mask";
    }
    EXPECT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(log.count(), 0) << "an invalid call ran";
  });
}

// ---------------------------------------------------------------------------
// Errors: EBUSY

TEST_P(DomainErrorTest, AsyncDescriptorInFlightIsBusy) {
  run_with_deadline(kUnitDeadline, "EBUSY async", [&] {
    domain d(attached_domain_options(2, engine()));
    auto att = d.attach(0);
    run_log log(2);
    log.reset();
    call_single_data csd(&run_log::record, &log);
    std::error_code first, second;
    std::thread([&] {
      first = d.call_function_single_async(0, csd);
      second = d.call_function_single_async(0, csd);
    }).join();
    EXPECT_EQ(first, kOk);
    EXPECT_EQ(second, kBusy);
    xcall::poll();
    EXPECT_EQ(log.at(0), 1);
  });
}

TEST_P(DomainErrorTest, AttachingAHostedCpuIsBusy) {
  run_with_deadline(kUnitDeadline, "EBUSY attach hosted", [&] {
    domain d(attached_domain_options(2, engine()));
    host_thread h(d, 1);
    try {
      auto att = d.attach(1);
      ADD_FAILURE() << "a second thread attached CPU 1";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), kBusy) << e.what();
    }
    EXPECT_EQ(xcall::this_cpu(), no_cpu);
    // The first host is unaffected.
    run_log log(2);
    log.reset();
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(1), 1);
  });
}

TEST_P(DomainErrorTest, AttachingFromAThreadThatHostsACpuIsBusy) {
  run_with_deadline(kUnitDeadline, "EBUSY attach twice", [&] {
    domain d(attached_domain_options(3, engine()));
    domain other(attached_domain_options(2, engine()));
    auto att = d.attach(0);
    for (cpu_t c : {0u, 1u}) {
      try {
        auto second = d.attach(c);
        ADD_FAILURE() << "a thread hosting CPU 0 attached CPU " << c << " too";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), kBusy) << e.what();
      }
    }
    try {
      auto second = other.attach(0);
      ADD_FAILURE() << "a thread hosting a CPU of one domain attached a CPU of another";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), kBusy) << e.what();
    }
    EXPECT_EQ(xcall::this_cpu(), 0u);
    EXPECT_FALSE(d.cpu_online(1));
    EXPECT_FALSE(other.cpu_online(0));
    // After detaching, the thread may attach again, here or elsewhere.
    att.detach();
    { auto again = d.attach(1); EXPECT_EQ(xcall::this_cpu(), 1u); }
    { auto again = other.attach(0); EXPECT_EQ(xcall::this_cpu(), 0u); }
  });
}

TEST_P(DomainErrorTest, ACpuDetachedByOneThreadCanBeAttachedByAnother) {
  run_with_deadline(kUnitDeadline, "reattach", [&] {
    domain d(attached_domain_options(2, engine()));
    { host_thread h(d, 1); }
    EXPECT_FALSE(d.cpu_online(1));
    host_thread h(d, 1);
    EXPECT_TRUE(d.cpu_online(1));
    run_log log(2);
    log.reset();
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(1), 1);
  });
}

// ---------------------------------------------------------------------------
// Errors: EDEADLK

TEST_P(DomainErrorTest, WaitingCallInsideAnIrqGuardIsDeadlk) {
  run_with_deadline(kUnitDeadline, "EDEADLK guard", [&] {
    domain d(attached_domain_options(2, engine()));
    host_thread h(d, 1);
    auto att = d.attach(0);
    run_log log(2);
    log.reset();
    {
      xcall::irq_guard g;
      EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kDeadlk);
      EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kDeadlk);
    }
    EXPECT_EQ(log.count(), 0);
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(1), 1);
  });
}

TEST_P(DomainErrorTest, CpuDownOfTheCallersOwnCpuIsDeadlk) {
  run_with_deadline(kUnitDeadline, "EDEADLK cpu_down self", [&] {
    domain d(owned_options(3, engine()));
    std::error_code own;
    ASSERT_EQ(d.call_function_single(1, [&] { own = d.cpu_down(1); }), kOk);
    EXPECT_EQ(own, kDeadlk);
    EXPECT_TRUE(d.cpu_online(1)) << "a refused cpu_down took the CPU down anyway";
    run_log log(3);
    log.reset();
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(1), 1);
  });
}

// ---------------------------------------------------------------------------
// Errors: ENOTSUP

TEST_P(DomainErrorTest, HotplugOfAnAttachedCpuIsNotSupported) {
  run_with_deadline(kUnitDeadline, "ENOTSUP hotplug attached", [&] {
    domain d(attached_domain_options(2, engine()));
    host_thread h(d, 1);
    EXPECT_EQ(d.cpu_down(1), kNotsup);
    EXPECT_TRUE(d.cpu_online(1));
    EXPECT_EQ(d.cpu_up(1), kNotsup);
    EXPECT_TRUE(d.cpu_online(1));
    // From the host itself too.
    std::error_code down, up;
    h.run([&] {
      down = d.cpu_down(1);
      up = d.cpu_up(1);
    });
    EXPECT_TRUE(down == kNotsup || down == kDeadlk) << down.message();
    EXPECT_EQ(up, kNotsup);
    EXPECT_TRUE(d.cpu_online(1));
  });
}

TEST_P(DomainErrorTest, AttachOnADomainThatStartsItsThreadsIsNotSupported) {
  run_with_deadline(kUnitDeadline, "ENOTSUP attach", [&] {
    domain d(owned_options(2, engine()));
    for (cpu_t c : {0u, 1u, 2u}) {
      try {
        auto att = d.attach(c);
        ADD_FAILURE() << "attach(" << c << ") on an owned domain succeeded";
      } catch (const std::system_error& e) {
        if (c < 2) {
          EXPECT_EQ(e.code(), kNotsup) << e.what();
        } else {
          EXPECT_TRUE(e.code() == kNotsup || e.code() == kNxio) << e.what();
        }
      }
    }
    EXPECT_EQ(xcall::this_cpu(), no_cpu);
  });
}

// ---------------------------------------------------------------------------
// A mask with no online target is success with nothing to do.

TEST_P(DomainTest, NoOnlineTargetIsSuccessWithNothingRun) {
  run_with_deadline(kUnitDeadline, "empty targets", [&] {
    domain d(owned_options(kN, engine()));
    ASSERT_EQ(d.cpu_down(3), kOk);
    ASSERT_EQ(d.cpu_down(2), kOk);
    run_log log(kN);
    log.reset();
    auto rec = &run_log::record;
    auto never = [](cpu_t, void*) { return false; };
    for (bool wait : {true, false}) {
      SCOPED_TRACE(wait ? "wait" : "no wait");
      for (const cpumask& m : {make_mask(kN, {}), make_mask(kN, {2, 3})}) {
        EXPECT_EQ(d.call_function_many(m, rec, &log, wait), kOk);
        EXPECT_EQ(d.on_each_cpu_mask(m, rec, &log, wait), kOk);
        EXPECT_EQ(d.on_each_cpu_cond_mask(never, rec, &log, wait, make_mask(kN, {0, 1})),
                  kOk);
        EXPECT_EQ(d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, rec, &log, wait, m),
                  kOk);
      }
    }
    EXPECT_EQ(d.call_function_many(make_mask(kN, {}), [&] { log.record_here(); }), kOk);
    EXPECT_EQ(d.on_each_cpu_mask(make_mask(kN, {3}), [&] { log.record_here(); }), kOk);
    EXPECT_EQ(d.on_each_cpu(&xcall_test::noop, nullptr, true), kOk);
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(log.count(), 0);
  });
}

TEST_P(DomainTest, OnlyTheCallersOwnCpuIsSuccessWithNothingRemote) {
  run_with_deadline(kUnitDeadline, "only self", [&] {
    domain d(attached_domain_options(kN, engine()));
    auto att = d.attach(2);  // the only online CPU
    run_log log(kN);
    log.reset();
    for (bool wait : {true, false}) {
      EXPECT_EQ(d.call_function(&run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.call_function_many(make_mask(kN, {2}), &run_log::record, &log, wait), kOk);
      cpumask all(kN);
      all.set_all();
      EXPECT_EQ(d.call_function_many(all, &run_log::record, &log, wait), kOk);
    }
    EXPECT_EQ(log.count(), 0);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(2), 1);
    EXPECT_EQ(log.count(), 1);
  });
}

TEST_P(DomainTest, EveryCpuDownLeavesOutsideCallsWithNothingToDo) {
  run_with_deadline(kUnitDeadline, "all down", [&] {
    domain d(owned_options(3, engine()));
    for (cpu_t c = 0; c < 3; ++c) ASSERT_EQ(d.cpu_down(c), kOk);
    EXPECT_TRUE(d.online_mask().none());
    run_log log(3);
    log.reset();
    cpumask all(3);
    all.set_all();
    for (bool wait : {true, false}) {
      EXPECT_EQ(d.call_function(&run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.call_function_many(all, &run_log::record, &log, wait), kOk);
      EXPECT_EQ(d.call_function_any(all, &run_log::record, &log, wait), kNxio);
      EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, wait), kNxio);
    }
    EXPECT_EQ(d.on_each_cpu([&] { log.record_here(); }), kOk);
    EXPECT_EQ(log.count(), 0);
    for (cpu_t c = 0; c < 3; ++c) ASSERT_EQ(d.cpu_up(c), kOk);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 1}));
  });
}

// ---------------------------------------------------------------------------
// Hotplug

TEST_P(HotplugTest, CpuDownClearsOnlineAndCpuUpRestoresIt) {
  run_with_deadline(kUnitDeadline, "down/up", [&] {
    domain d(owned_options(kN, engine()));
    EXPECT_EQ(d.online_mask().count(), kN);
    ASSERT_EQ(d.cpu_down(2), kOk);
    EXPECT_FALSE(d.cpu_online(2));
    EXPECT_FALSE(d.online_mask().test(2));
    EXPECT_EQ(d.online_mask().count(), kN - 1);
    run_log log(kN);
    log.reset();
    EXPECT_EQ(d.call_function_single(2, &run_log::record, &log, true), kNxio);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 0, 1}));

    ASSERT_EQ(d.cpu_up(2), kOk);
    EXPECT_TRUE(d.cpu_online(2));
    EXPECT_EQ(d.online_mask().count(), kN);
    log.reset();
    EXPECT_EQ(d.call_function_single(2, &run_log::record, &log, true), kOk);
    EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 2, 1}));
  });
}

TEST_P(HotplugTest, CpuDownAndUpAreIdempotent) {
  run_with_deadline(kUnitDeadline, "idempotent", [&] {
    domain d(owned_options(3, engine()));
    EXPECT_EQ(d.cpu_up(1), kOk) << "up of an online CPU";
    EXPECT_TRUE(d.cpu_online(1));
    EXPECT_EQ(d.cpu_down(1), kOk);
    EXPECT_EQ(d.cpu_down(1), kOk) << "down of an offline CPU";
    EXPECT_FALSE(d.cpu_online(1));
    EXPECT_EQ(d.cpu_up(1), kOk);
    EXPECT_EQ(d.cpu_up(1), kOk);
    EXPECT_TRUE(d.cpu_online(1));
    run_log log(3);
    log.reset();
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    EXPECT_EQ(log.at(1), 1);
  });
}

TEST_P(HotplugTest, RepeatedDownUpKeepsTheCpuWorking) {
  run_with_deadline(kUnitDeadline, "down/up cycles", [&] {
    run_log log(2);
    domain d(owned_options(2, engine(), xcall::idle_mode::sleep));
    log.reset();
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(d.cpu_down(1), kOk);
      ASSERT_EQ(d.cpu_up(1), kOk);
      ASSERT_EQ(d.call_function_single(1, &run_log::record, &log, true), kOk);
    }
    EXPECT_EQ(log.at(1), 50);
  });
}

TEST_P(HotplugTest, CpuDownRunsWhatWasQueued) {
  run_with_deadline(kUnitDeadline, "down drains", [&] {
    // The log outlives the domain: CPU 0's no-wait call may still be queued
    // when the domain goes down, and it records into the log then.
    run_log log(2);
    log.reset();
    domain d(owned_options(2, engine(), xcall::idle_mode::sleep));
    constexpr int kAsync = 16;
    std::vector<call_single_data> csds(kAsync);
    for (auto& c : csds) {
      c.func = &run_log::record;
      c.info = &log;
    }
    int queued = 0;
    for (auto& c : csds) queued += !d.call_function_single_async(1, c);
    queued += !d.call_function_single(1, &run_log::record, &log, false);
    queued += !d.call_function_many(make_mask(2, {0, 1}), &run_log::record, &log, false) ? 1 : 0;
    ASSERT_EQ(queued, kAsync + 2);
    ASSERT_EQ(d.cpu_down(1), kOk);
    // cpu_down returns once the CPU has run everything queued for it.
    EXPECT_EQ(log.at(1), kAsync + 2) << "calls queued before cpu_down were lost";
    for (auto& c : csds) EXPECT_FALSE(c.in_flight());
    // CPU 0 is not going down: nothing says it ran the no-wait call yet.
    EXPECT_TRUE(eventually([&] { return log.at(0) == 1; })) << "CPU 0 got the many() call once";
  });
}

// A handler blocks CPU 1 on a gate, so the calls queued behind it are still
// queued when cpu_down starts; cpu_down must run them before it returns.
TEST_P(HotplugTest, CpuDownRunsCallsQueuedBehindABusyHandler) {
  run_with_deadline(kUnitDeadline, "down drains behind busy handler", [&] {
    run_log log(2);
    domain d(owned_options(2, engine(), xcall::idle_mode::sleep));
    log.reset();
    xcall_test::start_gate gate;
    std::atomic<bool> blocking{false};
    call_single_data blocker(
        [](void* p) noexcept {
          auto* g = static_cast<std::pair<xcall_test::start_gate*, std::atomic<bool>*>*>(p);
          g->second->store(true);
          g->first->wait();
        },
        nullptr);
    std::pair<xcall_test::start_gate*, std::atomic<bool>*> arg{&gate, &blocking};
    blocker.info = &arg;
    ASSERT_EQ(d.call_function_single_async(1, blocker), kOk);
    ASSERT_TRUE(eventually([&] { return blocking.load(); }));

    // Queued behind the blocker: async descriptors, one no-wait single (a
    // caller's no-wait descriptor is busy until it ran, and outside threads
    // may share storage, so one) and a waiting call.
    constexpr int kAsync = 8, kThreads = 1;
    std::vector<call_single_data> csds(kAsync);
    for (auto& c : csds) {
      c.func = &run_log::record;
      c.info = &log;
      ASSERT_EQ(d.call_function_single_async(1, c), kOk);
    }
    std::atomic<int> nowait_ok{0};
    std::vector<std::thread> callers;
    for (int i = 0; i < kThreads; ++i) {
      callers.emplace_back([&] {
        if (!d.call_function_single(1, &run_log::record, &log, false)) nowait_ok.fetch_add(1);
      });
    }
    std::atomic<bool> waiter_done{false};
    std::error_code waiter_ec;
    std::thread waiter([&] {
      waiter_ec = d.call_function_single(1, &run_log::record, &log, true);
      waiter_done.store(true);
    });
    ASSERT_TRUE(eventually([&] { return nowait_ok.load() == kThreads; }));
    for (auto& t : callers) t.join();
    std::this_thread::sleep_for(5ms);  // let the waiter queue its call
    EXPECT_EQ(log.count(), 0);

    std::error_code down_ec;
    std::atomic<bool> down_done{false};
    std::thread downer([&] {
      down_ec = d.cpu_down(1);
      down_done.store(true);
    });
    std::this_thread::sleep_for(10ms);
    EXPECT_FALSE(down_done.load()) << "cpu_down returned while CPU 1 was still busy";
    gate.open();
    downer.join();
    EXPECT_EQ(down_ec, kOk);
    EXPECT_FALSE(d.cpu_online(1));
    EXPECT_EQ(d.call_function_single(1, &run_log::record, &log, false), kNxio);
    // Everything queued before cpu_down began has run by now.
    const int expect = kAsync + kThreads + (waiter_ec ? 0 : 1);
    EXPECT_EQ(log.at(1), expect) << "cpu_down returned before running what was queued";
    waiter.join();
    EXPECT_EQ(waiter_ec, kOk) << "the waiter's call was queued before cpu_down began";
    EXPECT_TRUE(waiter_done.load());
    for (auto& c : csds) EXPECT_FALSE(c.in_flight());
    EXPECT_FALSE(blocker.in_flight());
  });
}

// ---------------------------------------------------------------------------
// Callable forms: exceptions

struct boom : std::runtime_error {
  explicit boom(cpu_t c) : std::runtime_error("boom on " + std::to_string(c)), cpu(c) {}
  cpu_t cpu;
};

TEST_P(CallableTest, AnExceptionOnOneTargetIsRethrownAfterEveryTargetRan) {
  run_with_deadline(kUnitDeadline, "callable exception", [&] {
    run_log log(kN);
    domain d(owned_options(kN, engine()));
    for (cpu_t thrower = 0; thrower < kN; ++thrower) {
      SCOPED_TRACE(testing::Message() << "thrower " << thrower);
      log.reset();
      auto f = [&] {
        const cpu_t me = xcall::this_cpu();
        if (me == thrower) throw boom(me);
        std::this_thread::sleep_for(10ms);  // slow targets still finish first
        log.record_here();
      };
      try {
        (void)d.on_each_cpu(f);
        ADD_FAILURE() << "on_each_cpu swallowed the exception";
      } catch (const boom& e) {
        EXPECT_EQ(e.cpu, thrower);
      }
      EXPECT_EQ(log.count(), static_cast<int>(kN) - 1)
          << "rethrown before every target finished: " << to_string(log.snapshot());
      EXPECT_EQ(log.at(thrower), 0);

      log.reset();
      cpumask m = make_mask(kN, {0, 1, 2, 3});
      EXPECT_THROW((void)d.call_function_many(m, f), boom);
      EXPECT_EQ(log.count(), static_cast<int>(kN) - 1);
      log.reset();
      EXPECT_THROW((void)d.on_each_cpu_mask(m, f), boom);
      EXPECT_EQ(log.count(), static_cast<int>(kN) - 1);
      EXPECT_THROW((void)d.call_function_single(thrower, f), boom);
    }
  });
}

TEST_P(CallableTest, EveryTargetThrowingRethrowsOne) {
  run_with_deadline(kUnitDeadline, "callable all throw", [&] {
    domain d(owned_options(kN, engine()));
    std::atomic<int> ran{0};
    try {
      (void)d.on_each_cpu([&] {
        ran.fetch_add(1);
        throw boom(xcall::this_cpu());
      });
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_LT(e.cpu, kN);
    }
    EXPECT_EQ(ran.load(), static_cast<int>(kN));
  });
}

TEST_P(CallableTest, LocalRunThrowingIsRethrownAfterRemoteTargets) {
  run_with_deadline(kUnitDeadline, "callable local throw", [&] {
    domain d(attached_domain_options(3, engine()));
    host_thread h0(d, 0);
    host_thread h2(d, 2);
    auto att = d.attach(1);
    run_log log(3);
    log.reset();
    auto f = [&] {
      if (xcall::this_cpu() == 1) throw boom(1);
      log.record_here();
    };
    EXPECT_THROW((void)d.on_each_cpu(f), boom);
    EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 0, 1}));
    EXPECT_THROW((void)d.call_function_single(1, f), boom);
    EXPECT_FALSE(xcall::irqs_disabled()) << "the local guard must end even when f throws";
  });
}

TEST_P(CallableTest, ValuesCapturedByReferenceComeBack) {
  run_with_deadline(kUnitDeadline, "callable captures", [&] {
    domain d(owned_options(3, engine()));
    std::atomic<int> sum{0};
    EXPECT_EQ(d.on_each_cpu([&] { sum.fetch_add(static_cast<int>(xcall::this_cpu()) + 1); }), kOk);
    EXPECT_EQ(sum.load(), 1 + 2 + 3);
    int plain = 0;
    EXPECT_EQ(d.call_function_single(2, [&] { plain = 42; }), kOk);
    EXPECT_EQ(plain, 42);
    // A const callable and an rvalue callable both work.
    const auto cf = [&] { sum.fetch_add(100); };
    EXPECT_EQ(d.call_function_many(make_mask(3, {0, 1}), cf), kOk);
    EXPECT_EQ(sum.load(), 206);
    EXPECT_EQ(d.on_each_cpu_mask(make_mask(3, {2}), [&] { sum.fetch_add(1000); }), kOk);
    EXPECT_EQ(sum.load(), 1206);
  });
}

// ---------------------------------------------------------------------------
// Destruction

TEST_P(DestructionTest, DestroyedWhileAttachedAbortsNamingTheCpu) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* d = new domain(attached_domain_options(4, engine()));
        // Leaked on purpose: the handle must not outlive the abort it causes.
        auto* att = new xcall::cpu_attachment(d->attach(3));
        (void)att;
        delete d;
      },
      "attached");
  EXPECT_DEATH(
      {
        auto* d = new domain(attached_domain_options(4, engine()));
        auto* att = new xcall::cpu_attachment(d->attach(3));
        (void)att;
        delete d;
      },
      "(CPU|cpu)[ #]*3");
}

TEST_P(DestructionTest, DestroyedAfterEveryAttachmentEndedIsFine) {
  run_with_deadline(kUnitDeadline, "destroy after detach", [&] {
    auto d = std::make_unique<domain>(attached_domain_options(3, engine()));
    {
      host_thread h(*d, 0);
      auto att = d->attach(1);
    }
    d.reset();
    SUCCEED();
  });
}

TEST_P(DestructionTest, DestructorRunsWhatIsQueuedOnOwnedCpus) {
  run_with_deadline(kUnitDeadline, "destroy drains", [&] {
    run_log log(3);
    log.reset();
    constexpr int kAsync = 8;
    std::vector<call_single_data> csds(kAsync * 3);
    for (auto& c : csds) {
      c.func = &run_log::record;
      c.info = &log;
    }
    int queued = 0;
    {
      domain d(owned_options(3, engine(), xcall::idle_mode::sleep));
      for (int i = 0; i < kAsync * 3; ++i) {
        queued += !d.call_function_single_async(static_cast<cpu_t>(i % 3), csds[i]);
      }
      queued += d.on_each_cpu(&run_log::record, &log, false) ? 0 : 3;
    }
    EXPECT_EQ(queued, kAsync * 3 + 3);
    EXPECT_EQ(log.count(), queued) << "the destructor dropped queued calls";
    EXPECT_EQ(log.snapshot(), (std::vector<int>{kAsync + 1, kAsync + 1, kAsync + 1}));
    for (auto& c : csds) EXPECT_FALSE(c.in_flight());
  });
}

TEST_P(DestructionTest, ManyDomainsComeAndGo) {
  run_with_deadline(kUnitDeadline, "domains come and go", [&] {
    for (int i = 0; i < 20; ++i) {
      domain d(owned_options(1 + i % 4, engine()));
      run_log log(d.nr_cpu_ids());
      log.reset();
      ASSERT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk);
      ASSERT_EQ(log.count(), static_cast<int>(d.nr_cpu_ids()));
    }
  });
}

// ---------------------------------------------------------------------------
// Misc contract points

TEST_P(DomainTest, OnlineMaskIsLiveAndMatchesCpuOnline) {
  run_with_deadline(kUnitDeadline, "online mask", [&] {
    domain d(attached_domain_options(kN, engine()));
    const cpumask& online = d.online_mask();
    EXPECT_EQ(online.size(), kN);
    EXPECT_TRUE(online.none());
    {
      host_thread h(d, 2);
      EXPECT_TRUE(online.test(2));
      EXPECT_TRUE(d.cpu_online(2));
      EXPECT_EQ(online.count(), 1u);
    }
    EXPECT_FALSE(online.test(2));
    EXPECT_FALSE(d.cpu_online(2));
    EXPECT_FALSE(d.cpu_online(kN));
    EXPECT_FALSE(d.cpu_online(no_cpu));
  });
}

TEST_P(DomainTest, CallsFromManyOutsideThreadsAtOnce) {
  run_with_deadline(kUnitDeadline, "concurrent outside callers", [&] {
    run_log log(3);
    domain d(owned_options(3, engine()));
    log.reset(std::thread::id());
    constexpr int kThreads = 6, kRounds = 100;
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kRounds; ++i) {
          switch ((t + i) % 3) {
            case 0: EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, true), kOk); break;
            case 1: EXPECT_EQ(d.on_each_cpu(&run_log::record, &log, false), kOk); break;
            case 2: EXPECT_EQ(d.call_function_single(i % 3, &run_log::record, &log, i % 2), kOk); break;
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    // Per thread: rounds with (t+i)%3 in {0,1} make 3 runs, the others 1.
    int expect = 0;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kRounds; ++i) expect += ((t + i) % 3 == 2) ? 1 : 3;
    }
    EXPECT_TRUE(eventually([&] { return log.count() == expect; }))
        << log.count() << " of " << expect;
    std::this_thread::sleep_for(2ms);
    EXPECT_EQ(log.count(), expect);
    EXPECT_EQ(log.stray.load(), 0);
  });
}

}  // namespace
