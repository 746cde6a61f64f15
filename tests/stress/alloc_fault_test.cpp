// alloc_fault_test.cpp — allocation failure inside xcall (the fail_alloc
// fault: every n-th allocation of caller storage, descriptors, call blocks
// or signal storage fails). Every call form then reports not_enough_memory
// (or succeeds: not every form allocates), attach throws std::bad_alloc and
// leaves the CPU free, and nothing stays claimed: no outside slot stays
// busy, no nesting depth stays counted. AddressSanitizer checks that nothing
// leaks.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <new>
#include <thread>
#include <vector>

#include "call_forms.hpp"
#include "fault_injection.hpp"
#include "test_support.hpp"
#include "xcall/xcall.hpp"

namespace {

using namespace std::chrono_literals;
namespace fault = xcall::detail::fault;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::form;
using xcall_test::owned_options;

const auto kNoMem = std::make_error_code(std::errc::not_enough_memory);

class AllocFailureTest : public xcall_test::engine_test {
 protected:
  void TearDown() override { fault::disarm_all(); }
};

bool always(cpu_t, void*) { return true; }

/// One call of form `how` to CPU 1 (or every CPU) from the calling thread.
std::error_code call_in_form(domain& d, form how, xcall::call_single_data& csd,
                             xcall_test::run_log& log) {
  xcall_test::eventually([&] { return !csd.in_flight(); });
  const xcall::cpumask& all = d.online_mask();
  return xcall_test::call_in_form(
      d, how, xcall_test::call_args{1, all, &xcall_test::run_log::record, &log, &always, &csd});
}

TEST_P(AllocFailureTest, EveryFormFromAnOutsideThreadFailsCleanlyThenWorks) {
  domain d(owned_options(3, engine()));
  xcall_test::run_log log(3);
  xcall::call_single_data csd;
  xcall_test::run_with_deadline(
      xcall_test::kUnitDeadline, "calls with every allocation failing", [&] {
        // Outside slots are made on first use: every call that needs
        // one fails, and must give it back. Three rounds over more
        // forms than there are slots would exhaust a leaking pool.
        fault::arm(fault::kind::fail_alloc, 1);
        int nomem = 0;
        for (int round = 0; round < 3; ++round) {
          for (form how : xcall_test::kAllForms) {
            const std::error_code ec = call_in_form(d, how, csd, log);
            if (ec == kNoMem) {
              ++nomem;
            } else {
              EXPECT_FALSE(ec) << how << ": " << ec.message();
            }
          }
        }
        EXPECT_GT(nomem, 0);
        fault::disarm_all();
        // Every slot still works, from many threads at once.
        std::vector<std::thread> callers;
        for (int t = 0; t < 40; ++t) {
          callers.emplace_back(
              [&] { EXPECT_FALSE(d.call_function(&xcall_test::noop, nullptr, false)); });
        }
        for (auto& t : callers) t.join();
        EXPECT_FALSE(d.call_function(&xcall_test::noop, nullptr, true));
      });
}

TEST_P(AllocFailureTest, AHostsNestingDepthIsGivenBack) {
  domain d(owned_options(3, engine()));
  // On CPU 0: a no-wait multi-CPU call fails at a fresh depth, then works.
  std::error_code failed, worked;
  std::atomic<int> runs{0};
  ASSERT_FALSE(d.call_function_single(0, [&] {
    fault::arm(fault::kind::fail_alloc, 1);
    failed = d.call_function_many(d.online_mask(), &xcall_test::noop, nullptr, false);
    fault::disarm_all();
    worked = d.call_function_many(
        d.online_mask(), [](void* r) noexcept { static_cast<std::atomic<int>*>(r)->fetch_add(1); },
        &runs, true);
  }));
  EXPECT_EQ(failed, kNoMem);
  EXPECT_FALSE(worked);
  EXPECT_EQ(runs.load(), 2);
  // The depth went back to 0: a call from CPU 0 now runs at depth 0, whose
  // storage exists, and so allocates nothing even with every allocation
  // failing.
  std::error_code at_depth0;
  ASSERT_FALSE(d.call_function_single(0, [&] {
    fault::arm(fault::kind::fail_alloc, 1);
    at_depth0 = d.call_function_many(d.online_mask(), &xcall_test::noop, nullptr, true);
    fault::disarm_all();
  }));
  EXPECT_FALSE(at_depth0) << at_depth0.message();
}

TEST_P(AllocFailureTest, SignalAttachThrowsBadAllocAndLeavesTheCpuFree) {
  domain d(xcall_test::attached_domain_options(2, engine()));
  std::thread([&] {
    fault::arm(fault::kind::fail_alloc, 1);
    EXPECT_THROW((void)d.attach(1, {xcall::delivery_mode::signal, false}), std::bad_alloc);
    fault::disarm_all();
    xcall::cpu_attachment att = d.attach(1, {xcall::delivery_mode::signal, false});
    EXPECT_TRUE(d.cpu_online(1));
  }).join();
  EXPECT_FALSE(d.cpu_online(1));
}

TEST_P(AllocFailureTest, SomeAllocationsFailingUnderLoad) {
  domain d(owned_options(4, engine()));
  std::atomic<long> nomem{0}, other{0}, ok{0};
  fault::arm(fault::kind::fail_alloc, 3);
  xcall_test::run_with_deadline(xcall_test::stress_deadline(), "calls while allocations fail", [&] {
    std::vector<std::thread> callers;
    for (int t = 0; t < 24; ++t) {
      callers.emplace_back([&, t] {
        xcall::cpumask mask(4);
        for (int i = 0; i < 200; ++i) {
          mask.set(static_cast<cpu_t>((t + i) % 4));
          const std::error_code ec =
              (i % 2 == 0) ? d.call_function_many(mask, &xcall_test::noop, nullptr, i % 4 == 0)
                           : d.call_function_single(static_cast<cpu_t>(i % 4), &xcall_test::noop,
                                                    nullptr, false);
          (ec == kNoMem ? nomem : ec ? other : ok).fetch_add(1);
        }
      });
    }
    for (auto& t : callers) t.join();
    fault::disarm_all();
    EXPECT_FALSE(d.on_each_cpu(&xcall_test::noop, nullptr, true));
  });
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
}

XCALL_TEST_ON_EVERY_ENGINE(AllocFailureTest);

}  // namespace
