// call_form_test.cpp — xcall::domain: every call form runs on exactly the
// CPUs it must, from every kind of caller, on both engines
// (xcall::engine::percpu and ::classic).
//
// The world: 4 CPUs, CPU 3 offline, so online = {0, 1, 2}. A caller is either
// an outside thread, an attached thread hosting CPU 1, or a handler running on
// owned CPU 1. Handlers record this_cpu() in a run_log.
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "call_forms.hpp"
#include "domain_test_support.hpp"
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
using xcall_test::kN;
using xcall_test::kNxio;
using xcall_test::kOk;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;
using xcall_test::to_string;
using xcall_test::waits;

constexpr cpu_t kSelf = 1;     // the CPU a hosting caller hosts
constexpr cpu_t kOffline = 3;  // offline in every world

// ---------------------------------------------------------------------------
// Worlds: a domain plus a caller context.

enum class caller_kind { outside, attached, handler };

const char* name_of(caller_kind k) {
  switch (k) {
    case caller_kind::outside:
      return "outside";
    case caller_kind::attached:
      return "attached";
    case caller_kind::handler:
      return "handler";
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
        ASSERT_EQ(d.call_function_single(kSelf,
                                         [&] {
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
result invoke_once(domain& d, form f, cpu_t self, cpu_t target, const cpumask& mask, cond_log& log,
                   call_single_data& csd) {
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
  *os << '{' << name_of(c.f) << ", " << name_of(c.k) << ", " << xcall_test::engine_name(c.e) << '}';
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

}  // namespace
