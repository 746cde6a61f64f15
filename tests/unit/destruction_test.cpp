// destruction_test.cpp — xcall::domain's destructor: it aborts naming a CPU
// still attached, runs what is queued on owned CPUs, and domains come and go.
// Each test runs on both engines.
#include "xcall/domain.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "domain_test_support.hpp"
#include "test_support.hpp"

namespace {

using xcall::call_single_data;
using xcall::cpu_t;
using xcall::domain;
using xcall_test::attached_domain_options;
using xcall_test::host_thread;
using xcall_test::kOk;
using xcall_test::kUnitDeadline;
using xcall_test::owned_options;
using xcall_test::run_log;
using xcall_test::run_with_deadline;

// Each test runs once per engine (DestructionTest.Name/percpu and /classic):
// the destructor takes every owned CPU down through the engine.
class DestructionTest : public xcall_test::engine_test {};
XCALL_TEST_ON_EVERY_ENGINE(DestructionTest);

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

}  // namespace
