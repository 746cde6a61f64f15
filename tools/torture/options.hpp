// options.hpp — xcall-torture's command line: what to run, how hard, for how
// long, and where to report. Parsed by CLI11 (Debian: libcli11-dev).
//
// Every option is checked before anything starts; a bad one ends the tool
// with a message naming it and exit code 2 (kExitBadOptions).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "xcall/options.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

/// The kinds of operation an invoker picks from, by weight.
enum class op_kind : unsigned {
  single,       ///< call_function_single, no wait: the handler frees the record
  single_wait,  ///< call_function_single, wait
  single_rpc,   ///< no wait, then wait for a completion flag the handler sets
  many,         ///< call_function_many / on_each_cpu_mask, no wait
  many_wait,    ///< the same with wait, on the live mask churners change
  all,          ///< call_function / on_each_cpu, no wait
  all_wait,     ///< the same with wait, while CPUs go offline and online
  async,        ///< call_function_single_async with the invoker's own descriptor
  any,          ///< call_function_any on the live mask, wait or not
  cond,         ///< on_each_cpu_cond_mask with a random predicate, wait or not
  callable,     ///< the callable forms (always wait); the callable sometimes throws
  cond_throw,   ///< on_each_cpu_cond_mask whose predicate throws for one CPU
  rendezvous,   ///< call_function_many with wait whose functions wait for each other
  count
};
inline constexpr unsigned kOpKinds = static_cast<unsigned>(op_kind::count);

/// "single", "single-wait", ... (the suffix of the --weight-* options).
const char* op_name(op_kind kind) noexcept;

/// What a function run by a call does when it acts (--nesting): the kinds a
/// nested step picks from, by weight (--nest-weight-<kind>).
enum class nest_kind : unsigned {
  call,          ///< an operation picked by the --weight-* mix
  poll,          ///< xcall::poll()
  idle,          ///< xcall::idle_wait() with a short timeout
  idle_forever,  ///< idle_wait(nanoseconds::max()) for a call arranged to come back
  region,        ///< a blocking_region, with a nested operation inside
  guard,         ///< an irq_guard around a nested call (waiting: EDEADLK)
  hotplug,       ///< cpu_down/cpu_up of an owned CPU (of its own: EDEADLK)
  count
};
inline constexpr unsigned kNestKinds = static_cast<unsigned>(nest_kind::count);
inline constexpr unsigned kMaxNesting = 8;

/// "call", "poll", ... (the suffix of the --nest-weight-* options).
const char* nest_name(nest_kind kind) noexcept;

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadOptions = 2;

struct torture_options {
  xcall::cpu_t cpus = 4;
  unsigned threads = 2;  ///< outside invoker threads
  double duration_s = 30;
  xcall::engine engine = xcall::engine::percpu;
  xcall::idle_mode idle = xcall::idle_mode::adaptive;
  std::uint64_t seed = 0;  ///< 0 on the command line: pick one at random
  std::array<unsigned, kOpKinds> weights{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  unsigned nesting = 0;      ///< functions act up to this many levels deep; 0: never
  unsigned nest_one_in = 3;  ///< a function that may act does so one time in this many
  std::array<unsigned, kNestKinds> nest_weights{8, 2, 1, 1, 2, 2, 1};
  /// --crowd: outside threads making no-wait calls to one-CPU masks; when
  /// `crowd_over_slots`, that many *more* than the library's outside slots.
  unsigned crowd = 0;
  bool crowd_over_slots = false;
  bool attach_race = false;     ///< --attached: a second thread races each re-attach
  double hang_timeout_s = 10;   ///< an activity busy this long is a hang; 0: off
  double onoff_interval_s = 0;  ///< 0: no hotplug (owned) / no detach (attached)
  unsigned mask_churn = 0;      ///< threads flipping bits of the invokers' masks
  double stutter_s = 0;         ///< run this long, pause this long, repeat
  bool attached = false;        ///< CPUs hosted by attached application threads
  /// --attached: how calls reach a host running its own code (attach_options):
  /// poll, signal, or fd (the host blocks in epoll_wait on its doorbell fd).
  xcall::delivery_mode delivery = xcall::delivery_mode::poll;
  bool proxy = false;                ///< --attached: waiting callers may run a parked host's calls
  unsigned handler_delay_us = 0;     ///< handlers delay up to this long (busy or asleep)
  double stat_interval_s = 5;        ///< 0: no periodic statistics lines
  std::string json_file;             ///< empty: no JSON summary
  unsigned stall_timeout_ms = 5000;  ///< 0: the library's stall watchdog is off
  std::vector<std::string> faults;   ///< --fault NAME[=PARAM] (xcall-torture-faults only)

  /// The command line that repeats this run (seed included).
  std::string command_line() const;
  /// Whether --fault NAME (with or without a parameter) was given.
  bool has_fault(const char* name) const;
  /// The number of crowd threads (--crowd), `slots` being the library's
  /// outside slot count.
  unsigned crowd_threads(unsigned slots) const noexcept {
    return crowd_over_slots ? slots + crowd : crowd;
  }
};

/// The outcome of parsing: options to run with, or an exit code to end with
/// at once (0 after --help, kExitBadOptions after an error, already printed).
struct parse_result {
  std::optional<torture_options> options;
  int exit_code = kExitSuccess;
};

parse_result parse_options(int argc, char** argv);

const char* engine_name(xcall::engine engine) noexcept;
const char* idle_name(xcall::idle_mode idle) noexcept;
const char* delivery_name(xcall::delivery_mode delivery) noexcept;

}  // namespace xcall_torture
