// options.cpp — the command line of xcall-torture, parsed and checked with
// CLI11. Each check names the option and says what is wrong with it.
#include "options.hpp"

#include "faults.hpp"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace xcall_torture {
namespace {

constexpr const char* kOpNames[kOpKinds] = {
    "single", "single-wait", "single-rpc", "many",     "many-wait",  "all",        "all-wait",
    "async",  "any",         "cond",       "callable", "cond-throw", "rendezvous",
};

constexpr const char* kNestNames[kNestKinds] = {
    "call", "poll", "idle", "idle-forever", "region", "guard", "hotplug",
};

constexpr const char* kNestHelp[kNestKinds] = {
    "a nested operation (picked by the --weight-* mix)",
    "xcall::poll() inside a function",
    "xcall::idle_wait() with a short timeout inside a function",
    "xcall::idle_wait(forever) inside a function, for a call arranged to come back",
    "a blocking_region (with a nested operation inside) inside a function",
    "an irq_guard around a nested call inside a function (waiting calls: EDEADLK)",
    "cpu_down/cpu_up of an owned CPU from inside a function",
};

constexpr const char* kOpHelp[kOpKinds] = {
    "call_function_single, no wait (the handler frees the argument)",
    "call_function_single with wait",
    "call_function_single without wait, then wait for the handler's completion flag",
    "call_function_many / on_each_cpu_mask without wait",
    "call_function_many / on_each_cpu_mask with wait, on the live mask",
    "call_function / on_each_cpu without wait",
    "call_function / on_each_cpu with wait",
    "call_function_single_async with the invoker's own call_single_data",
    "call_function_any on the live mask",
    "on_each_cpu_cond_mask with a random predicate",
    "the callable forms (always wait), whose callable sometimes throws",
    "on_each_cpu_cond_mask whose predicate throws for one CPU (nothing may run)",
    "call_function_many with wait over stable online CPUs, whose functions wait for each other",
};

// CLI11 reports a validator's non-empty return as "--option: <text>".
std::string check_seconds(const std::string& text, bool allow_zero) {
  double v = 0;
  try {
    std::size_t used = 0;
    v = std::stod(text, &used);
    if (used != text.size()) throw std::invalid_argument(text);
  } catch (const std::exception&) {
    return "'" + text + "' is not a number of seconds";
  }
  if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0)) {
    return "'" + text + "' must be " + (allow_zero ? "0 (off) or more" : "more than 0") +
           " seconds";
  }
  if (v > 7 * 24 * 3600.0) return "'" + text + "' is more than a week";
  return {};
}

std::uint64_t random_seed() {
  std::random_device rd;
  std::uint64_t s = (std::uint64_t{rd()} << 32) ^ rd();
  return s == 0 ? 1 : s;
}

}  // namespace

const char* op_name(op_kind kind) noexcept { return kOpNames[static_cast<unsigned>(kind)]; }
const char* nest_name(nest_kind kind) noexcept { return kNestNames[static_cast<unsigned>(kind)]; }

bool torture_options::has_fault(const char* name) const {
  for (const std::string& f : faults) {
    if (f.compare(0, f.find('='), name) == 0) return true;
  }
  return false;
}

const char* engine_name(xcall::engine engine) noexcept {
  return engine == xcall::engine::classic ? "classic" : "percpu";
}

const char* idle_name(xcall::idle_mode idle) noexcept {
  switch (idle) {
    case xcall::idle_mode::poll:
      return "poll";
    case xcall::idle_mode::sleep:
      return "sleep";
    case xcall::idle_mode::adaptive:
      break;
  }
  return "adaptive";
}

const char* delivery_name(xcall::delivery_mode delivery) noexcept {
  switch (delivery) {
    case xcall::delivery_mode::signal:
      return "signal";
    case xcall::delivery_mode::fd:
      return "fd";
    case xcall::delivery_mode::poll:
      break;
  }
  return "poll";
}

std::string torture_options::command_line() const {
  std::ostringstream s;
  s << "xcall-torture --seed " << seed << " --cpus " << cpus << " --threads " << threads
    << " --duration " << duration_s << " --engine " << engine_name(engine) << " --idle "
    << idle_name(idle);
  for (unsigned k = 0; k < kOpKinds; ++k) {
    if (weights[k] != 1) s << " --weight-" << kOpNames[k] << ' ' << weights[k];
  }
  if (onoff_interval_s > 0) s << " --onoff-interval " << onoff_interval_s;
  if (mask_churn > 0) s << " --mask-churn " << mask_churn;
  if (stutter_s > 0) s << " --stutter " << stutter_s;
  if (attached) s << " --attached";
  if (delivery != xcall::delivery_mode::poll) s << " --delivery " << delivery_name(delivery);
  if (proxy) s << " --proxy";
  if (handler_delay_us > 0) s << " --handler-delay " << handler_delay_us;
  if (stall_timeout_ms != 5000) s << " --stall-timeout-ms " << stall_timeout_ms;
  if (nesting > 0) {
    s << " --nesting " << nesting;
    if (nest_one_in != 3) s << " --nest-one-in " << nest_one_in;
    const torture_options defaults;
    for (unsigned k = 0; k < kNestKinds; ++k) {
      if (nest_weights[k] != defaults.nest_weights[k]) {
        s << " --nest-weight-" << kNestNames[k] << ' ' << nest_weights[k];
      }
    }
  }
  if (crowd > 0) s << " --crowd " << (crowd_over_slots ? "slots+" : "") << crowd;
  if (attach_race) s << " --attach-race";
  if (hang_timeout_s != 10) s << " --hang-timeout " << hang_timeout_s;
  for (const std::string& f : faults) s << " --fault " << f;
  return s.str();
}

parse_result parse_options(int argc, char** argv) {
  torture_options o;
  CLI::App app{
      "xcall-torture: hammers xcall's cross-CPU calls with a random mix of operations while\n"
      "CPUs go offline and online and other threads flip the bits of the masks being passed,\n"
      "and checks every call (see docs/torture.md). Ends with 'End of test: SUCCESS' (exit 0)\n"
      "or 'End of test: FAILURE' (exit 1); bad options exit 2.",
      "xcall-torture"};
  app.option_defaults()->always_capture_default();

  std::string engine = "percpu";
  std::string idle = "adaptive";
  std::string delivery = "poll";
  std::string duration = "30", onoff = "0", stutter = "0", stat_interval = "5";
  std::string crowd = "0", hang_timeout = "10";

  app.add_option("--cpus", o.cpus, "CPUs in the domain")
      ->check(CLI::Range(xcall::cpu_t{1}, xcall::kMaxCpus));
  app.add_option("--threads", o.threads, "outside invoker threads")->check(CLI::Range(1u, 1024u));
  app.add_option("--duration", duration, "seconds to run")->check([](const std::string& s) {
    return check_seconds(s, false);
  });
  app.add_option("--engine", engine, "engine for multi-CPU calls: percpu or classic")
      ->check([](const std::string& s) -> std::string {
        return s == "percpu" || s == "classic"
                   ? std::string()
                   : "unknown engine '" + s + "' (choose percpu or classic)";
      });
  app.add_option("--idle", idle, "how idle CPUs wait: poll, adaptive or sleep")
      ->check([](const std::string& s) -> std::string {
        return s == "poll" || s == "adaptive" || s == "sleep"
                   ? std::string()
                   : "unknown idle mode '" + s + "' (choose poll, adaptive or sleep)";
      });
  app.add_option("--seed", o.seed,
                 "seed of every random choice (default: random, printed at start)");
  for (unsigned k = 0; k < kOpKinds; ++k) {
    app.add_option(std::string("--weight-") + kOpNames[k], o.weights[k],
                   std::string("relative weight of ") + kOpHelp[k])
        ->check(CLI::Range(0u, 1000000u));
  }
  app.add_option("--onoff-interval", onoff,
                 "seconds between CPU hotplug operations (attached: between detach/re-attach "
                 "of each CPU); 0 turns hotplug off")
      ->check([](const std::string& s) { return check_seconds(s, true); });
  app.add_option("--mask-churn", o.mask_churn,
                 "threads that set and clear bits of the masks invokers are passing")
      ->check(CLI::Range(0u, 64u));
  app.add_option("--stutter", stutter,
                 "run this many seconds, pause the invokers as long, repeat; 0 turns it off")
      ->check([](const std::string& s) { return check_seconds(s, true); });
  app.add_flag("--attached", o.attached,
               "CPUs are hosted by application threads that attach, run their own loop and poll");
  app.add_option("--delivery", delivery,
                 "with --attached: how calls reach a host running its own code: poll (only at "
                 "its safe points), signal (a doorbell signal interrupts it) or fd (it blocks "
                 "in epoll_wait on its doorbell fd)")
      ->check([](const std::string& s) -> std::string {
        return s == "poll" || s == "signal" || s == "fd"
                   ? std::string()
                   : "unknown delivery mode '" + s + "' (choose poll, signal or fd)";
      });
  app.add_flag("--proxy", o.proxy,
               "with --attached: hosts sometimes park in a blocking_region around a blocking "
               "system call, and waiting callers run their calls for them");
  app.add_option("--handler-delay", o.handler_delay_us,
                 "handlers delay up to this many microseconds (busy or asleep); 0: none")
      ->check(CLI::Range(0u, 1000000u));
  app.add_option("--stat-interval", stat_interval,
                 "seconds between statistics lines; 0 turns them off")
      ->check([](const std::string& s) { return check_seconds(s, true); });
  app.add_option("--json", o.json_file, "write a machine-readable summary to FILE")
      ->type_name("FILE");
  app.add_option("--stall-timeout-ms", o.stall_timeout_ms,
                 "the library's stall watchdog timeout; 0 turns it off (the environment "
                 "variable XCALL_STALL_TIMEOUT_MS overrides it)")
      ->check(CLI::Range(0u, 3600u * 1000u));
  app.add_option("--nesting", o.nesting,
                 "functions run by the tool's calls act (calls of every form, poll, idle_wait, "
                 "blocking_region, irq_guard, hotplug), up to this many levels deep; 0: never")
      ->check(CLI::Range(0u, kMaxNesting));
  app.add_option("--nest-one-in", o.nest_one_in,
                 "with --nesting: a function that may act does so one time in this many")
      ->check(CLI::Range(1u, 1000000u));
  for (unsigned k = 0; k < kNestKinds; ++k) {
    app.add_option(std::string("--nest-weight-") + kNestNames[k], o.nest_weights[k],
                   std::string("with --nesting: relative weight of ") + kNestHelp[k])
        ->check(CLI::Range(0u, 1000000u));
  }
  app.add_option("--crowd", crowd,
                 "outside threads making no-wait calls to one-CPU masks: N, or slots+K for K "
                 "more than the library's outside caller slots; 0: none")
      ->type_name("N|slots+K")
      ->check([](const std::string& s) -> std::string {
        const bool over = s.rfind("slots+", 0) == 0;
        const std::string n = over ? s.substr(6) : s;
        char* end = nullptr;
        const unsigned long v = std::strtoul(n.c_str(), &end, 10);
        if (n.empty() || *end != '\0' || n[0] == '-' || v > 4096) {
          return "'" + s + "' is not a number of threads (0..4096) nor slots+K";
        }
        return {};
      });
  app.add_flag("--attach-race", o.attach_race,
               "with --attached: a second thread races each host's re-attach of its CPU; the "
               "loser must get EBUSY (needs --onoff-interval)");
  app.add_option("--hang-timeout", hang_timeout,
                 "seconds a thread may stay in one activity (an operation, a nested step, a "
                 "hotplug) before it is a hang; 0 turns it off")
      ->check([](const std::string& s) { return check_seconds(s, true); });
  app.add_option("--fault", o.faults,
                 "arm a fault of the library: skip_seed_fix, widen_mask_window=US, "
                 "drop_doorbell=N, clear_after_run, borrow_second_slot, hotplug_mutex, "
                 "fail_alloc=N, widen_proxy_window=US, skip_proxy_recheck, skip_wake_relay, "
                 "proxy_one_target, help_own_wait_only or forget_guarded_help (only in "
                 "xcall-torture-faults; the "
                 "run must then fail, except with fail_alloc or widen_proxy_window alone)")
      ->type_name("NAME[=PARAM]")
      ->allow_extra_args(false)  // one value per --fault; repeat the option for more
      ->check([](const std::string& s) { return check_fault(s); });
  app.footer("Exit codes: 0 SUCCESS, 1 FAILURE, 2 bad options.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error on stderr
    return {std::nullopt, code == 0 ? kExitSuccess : kExitBadOptions};
  }

  auto bad = [](const std::string& why) {
    std::fprintf(stderr, "xcall-torture: %s\nRun with --help for more information.\n", why.c_str());
    return parse_result{std::nullopt, kExitBadOptions};
  };

  o.duration_s = std::stod(duration);
  o.onoff_interval_s = std::stod(onoff);
  o.stutter_s = std::stod(stutter);
  o.stat_interval_s = std::stod(stat_interval);
  o.hang_timeout_s = std::stod(hang_timeout);
  o.crowd_over_slots = crowd.rfind("slots+", 0) == 0;
  o.crowd = static_cast<unsigned>(std::stoul(o.crowd_over_slots ? crowd.substr(6) : crowd));
  o.engine = engine == "classic" ? xcall::engine::classic : xcall::engine::percpu;
  o.idle = idle == "poll"    ? xcall::idle_mode::poll
           : idle == "sleep" ? xcall::idle_mode::sleep
                             : xcall::idle_mode::adaptive;
  o.delivery = delivery == "signal" ? xcall::delivery_mode::signal
               : delivery == "fd"   ? xcall::delivery_mode::fd
                                    : xcall::delivery_mode::poll;

  bool any_weight = false;
  for (unsigned w : o.weights) any_weight = any_weight || w != 0;
  if (!any_weight) return bad("every --weight-* option is 0: there is no operation to run");
  if (!o.attached && (o.delivery != xcall::delivery_mode::poll || o.proxy)) {
    return bad((o.delivery != xcall::delivery_mode::poll
                    ? std::string("--delivery ") + delivery_name(o.delivery)
                    : std::string("--proxy")) +
               " needs --attached: only attached hosts choose how calls reach them");
  }
  if (o.attach_race && (!o.attached || o.onoff_interval_s <= 0)) {
    return bad("--attach-race needs --attached and --onoff-interval: the race is at re-attach");
  }
  if (o.hang_timeout_s > 0 && o.hang_timeout_s < 1) {
    return bad("--hang-timeout " + hang_timeout + " is below the minimum of 1 second");
  }
  if (o.nesting > 0) {
    bool any_nest = false;
    for (unsigned w : o.nest_weights) any_nest = any_nest || w != 0;
    if (!any_nest) return bad("every --nest-weight-* option is 0: a function has nothing to do");
  }
  if (o.onoff_interval_s > 0 && !o.attached && o.cpus < 2) {
    return bad("--onoff-interval needs --cpus 2 or more: hotplug never takes the last CPU down");
  }
  if (o.onoff_interval_s > 0 && o.onoff_interval_s < 0.001) {
    return bad("--onoff-interval " + onoff + " is below the minimum of 0.001 seconds");
  }
  if (o.stat_interval_s > 0 && o.stat_interval_s < 0.1) {
    return bad("--stat-interval " + stat_interval + " is below the minimum of 0.1 seconds");
  }
  if (o.stutter_s > 0 && o.stutter_s < 0.01) {
    return bad("--stutter " + stutter + " is below the minimum of 0.01 seconds");
  }
  if (!o.json_file.empty()) {
    std::ofstream probe(o.json_file, std::ios::app);
    if (!probe) return bad("--json: cannot open '" + o.json_file + "' for writing");
  }
  if (app.count("--seed") == 0) o.seed = random_seed();
  return {o, kExitSuccess};
}

}  // namespace xcall_torture
