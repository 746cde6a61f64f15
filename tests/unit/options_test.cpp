// options_test.cpp — domain_options: what domain's constructor accepts and
// how it rejects the rest (std::invalid_argument naming the option).
#include "xcall/options.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "xcall/domain.hpp"

namespace {

using namespace std::chrono_literals;
using xcall::domain;
using xcall::domain_options;
using xcall_test::attached_domain_options;
using xcall_test::owned_options;

// Builds a domain from `o` and expects std::invalid_argument whose what()
// contains `option`.
void expect_rejected(const domain_options& o, const std::string& option) {
  try {
    domain d(o);
    ADD_FAILURE() << "domain accepted options with a bad " << option;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos)
        << "message does not name the option '" << option << "': " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected std::invalid_argument for " << option
                  << ", got another exception: " << e.what();
  }
}

TEST(OptionsTest, DefaultsAreTheDocumentedOnes) {
  domain_options o;
  EXPECT_EQ(o.nr_cpus, 0u);
  EXPECT_TRUE(o.start_threads);
  EXPECT_FALSE(o.pin_threads);
  EXPECT_EQ(o.idle, xcall::idle_mode::adaptive);
  EXPECT_EQ(o.idle_spin, std::chrono::nanoseconds(50us));
  EXPECT_EQ(o.engine_kind, xcall::engine::percpu);
  EXPECT_GE(xcall::kMaxCpus, 4096u);
}

TEST(OptionsTest, NrCpusAboveMaxIsRejected) {
  domain_options o = attached_domain_options(xcall::kMaxCpus + 1);
  expect_rejected(o, "nr_cpus");
  o.nr_cpus = static_cast<xcall::cpu_t>(-2);  // a huge value, not a wrap to 0
  expect_rejected(o, "nr_cpus");
  o.start_threads = true;  // rejected before any thread would start
  expect_rejected(o, "nr_cpus");
}

TEST(OptionsTest, NrCpusAtMaxIsAccepted) {
  // Without threads, so a 4096-CPU domain costs memory only.
  domain d(attached_domain_options(xcall::kMaxCpus));
  EXPECT_EQ(d.nr_cpu_ids(), xcall::kMaxCpus);
  EXPECT_EQ(d.online_mask().size(), xcall::kMaxCpus);
  EXPECT_TRUE(d.online_mask().none());
}

TEST(OptionsTest, NrCpusZeroMeansHardwareConcurrency) {
  const unsigned hw = std::thread::hardware_concurrency();
  ASSERT_GT(hw, 0u) << "hardware_concurrency() unknown on this machine";
  {
    domain_options o;  // defaults: nr_cpus = 0, start_threads = true
    domain d(o);
    EXPECT_EQ(d.nr_cpu_ids(), hw);
    EXPECT_EQ(d.online_mask().count(), hw) << "every owned CPU starts online";
  }
  {
    domain d(attached_domain_options(0));
    EXPECT_EQ(d.nr_cpu_ids(), hw);
    EXPECT_TRUE(d.online_mask().none()) << "attach domains start with every CPU offline";
  }
}

TEST(OptionsTest, NegativeIdleSpinIsRejected) {
  domain_options o = owned_options(2);
  o.idle_spin = std::chrono::nanoseconds(-1);
  expect_rejected(o, "idle_spin");
  o.idle_spin = -1s;
  expect_rejected(o, "idle_spin");
}

TEST(OptionsTest, IdleSpinAboveOneSecondIsRejected) {
  domain_options o = owned_options(2);
  o.idle_spin = 1s + 1ns;
  expect_rejected(o, "idle_spin");
  o.idle_spin = 1h;
  expect_rejected(o, "idle_spin");
  o.start_threads = false;
  expect_rejected(o, "idle_spin");
}

TEST(OptionsTest, IdleSpinBoundsAreAccepted) {
  for (auto spin : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(1s)}) {
    domain_options o = owned_options(2);
    o.idle_spin = spin;
    domain d(o);
    EXPECT_EQ(d.online_mask().count(), 2u);
  }
}

TEST(OptionsTest, ClassicEngineConstructsAndRuns) {
  // engine::classic was "not implemented yet" when the options were first
  // written; now it is, and it must keep the same contract.
  for (bool start : {true, false}) {
    domain_options o = owned_options(3);
    o.engine_kind = xcall::engine::classic;
    o.start_threads = start;
    domain d(o);
    EXPECT_EQ(d.options().engine_kind, xcall::engine::classic);
    if (!start) continue;
    xcall_test::run_with_deadline(xcall_test::kUnitDeadline, "classic on_each_cpu", [&] {
      xcall_test::run_log log(3);
      log.reset();
      EXPECT_FALSE(d.on_each_cpu(&xcall_test::run_log::record, &log, true));
      EXPECT_EQ(log.snapshot(), (std::vector<int>{1, 1, 1}));
    });
  }
}

TEST(OptionsTest, NegativeStallTimeoutIsRejected) {
  domain_options o = owned_options(2);
  o.stall_timeout = std::chrono::nanoseconds(-1);
  expect_rejected(o, "stall_timeout");
  o.stall_timeout = std::chrono::nanoseconds(0);  // 0 turns the watchdog off
  domain d(o);
  EXPECT_EQ(d.online_mask().count(), 2u);
}

TEST(OptionsTest, OutOfRangeEnumsAreRejected) {
  domain_options o = owned_options(2);
  o.idle = static_cast<xcall::idle_mode>(42);
  expect_rejected(o, "idle");
  o = owned_options(2);
  o.engine_kind = static_cast<xcall::engine>(42);
  expect_rejected(o, "engine");
}

TEST(OptionsTest, GoodOptionsConstruct) {
  for (auto idle : {xcall::idle_mode::poll, xcall::idle_mode::adaptive, xcall::idle_mode::sleep}) {
    for (bool start : {true, false}) {
      for (bool pin : {false, true}) {
        domain_options o = owned_options(3, idle);
        o.start_threads = start;
        o.pin_threads = pin;
        SCOPED_TRACE(testing::Message()
                     << "idle=" << static_cast<int>(idle) << " start=" << start << " pin=" << pin);
        domain d(o);
        EXPECT_EQ(d.nr_cpu_ids(), 3u);
        EXPECT_EQ(d.online_mask().size(), 3u);
        EXPECT_EQ(d.online_mask().count(), start ? 3u : 0u);
        EXPECT_EQ(d.options().start_threads, start);
        EXPECT_EQ(d.options().pin_threads, pin);
        EXPECT_EQ(d.options().idle, idle);
        EXPECT_EQ(d.options().engine_kind, xcall::engine::percpu);
        for (xcall::cpu_t c = 0; c < 3; ++c) EXPECT_EQ(d.cpu_online(c), start);
      }
    }
  }
}

TEST(OptionsTest, OneCpuDomainConstructs) {
  domain d(owned_options(1));
  EXPECT_EQ(d.nr_cpu_ids(), 1u);
  EXPECT_TRUE(d.cpu_online(0));
  EXPECT_FALSE(d.cpu_online(1)) << "out of range is not online";
}

TEST(OptionsTest, OwnedDomainRunsCallsWithEachIdleMode) {
  // Good options not only construct: the domain they build works.
  for (auto idle : {xcall::idle_mode::poll, xcall::idle_mode::adaptive, xcall::idle_mode::sleep}) {
    SCOPED_TRACE(testing::Message() << "idle=" << static_cast<int>(idle));
    xcall_test::run_with_deadline(xcall_test::kUnitDeadline, "on_each_cpu per idle mode", [&] {
      domain d(owned_options(2, idle));
      xcall_test::run_log log(2);
      log.reset();
      EXPECT_FALSE(d.on_each_cpu(&xcall_test::run_log::record, &log, true));
      EXPECT_EQ(log.at(0), 1);
      EXPECT_EQ(log.at(1), 1);
    });
  }
}

}  // namespace
