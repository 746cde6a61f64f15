// domain_error_test.cpp — xcall::domain: every error of the contract
// (ENXIO, EINVAL, EBUSY, EDEADLK, ENOTSUP), each on both engines.
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <system_error>
#include <thread>

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
using xcall_test::host_thread;
using xcall_test::kBusy;
using xcall_test::kDeadlk;
using xcall_test::kInval;
using xcall_test::kN;
using xcall_test::kNotsup;
using xcall_test::kNxio;
using xcall_test::kOk;
using xcall_test::kUnitDeadline;
using xcall_test::make_mask;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;

// Each test runs once per engine (DomainErrorTest.Name/percpu and /classic):
// errors are checked on the engine that queues multi-CPU calls and
// takes CPUs offline.
class DomainErrorTest : public xcall_test::engine_test {};
XCALL_TEST_ON_EVERY_ENGINE(DomainErrorTest);

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
      EXPECT_EQ(
          d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, nullptr, &info, wait, all),
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
        EXPECT_EQ(
            d.on_each_cpu_cond_mask([](cpu_t, void*) { return true; }, rec, &log, wait, small),
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
    {
      auto again = d.attach(1);
      EXPECT_EQ(xcall::this_cpu(), 1u);
    }
    {
      auto again = other.attach(0);
      EXPECT_EQ(xcall::this_cpu(), 0u);
    }
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

}  // namespace
