// ops.hpp — the invokers: threads (or attached CPU hosts) that pick
// operations at random by weight and make each call with its checks.
//
// An outside invoker sometimes sends its operation to a random CPU first
// (a waiting single call of a "trampoline" function) so that the real call
// is made from inside a handler, on that CPU: the "this CPU" paths (skip
// self, run locally, drain while waiting) get exercised as well. An attached
// host's invoker always calls from its CPU. A trampoline that finds itself
// inside the doorbell signal's handler (--delivery signal) declines — an
// operation is not async-signal-safe — and the invoker makes the call from
// its own thread; one run by a proxy (--proxy) makes it as the parked CPU.
//
// With --nesting, a function that acts makes its operations through a
// short-lived *nested* invoker (nesting.hpp): it names the top-level
// operation its chain started from and its depth, borrows a top-level
// invoker's live mask (still churned) and async descriptors from the run's
// pool, never blocks on the tool's locks (it runs on a CPU), and, inside an
// irq_guard or a parked blocking_region, makes no call the tool itself would
// wait for (nothing could run it: that hang would be the tool's, by design).
//
// Thread safety: an invoker is used by one thread at a time (its own, or the
// CPU running its trampoline while its thread waits for it); its live mask is
// shared with the churners (and nested invokers); its async descriptors with
// the CPUs running them.
#pragma once

#include <cstdint>
#include <string>

#include "checks.hpp"
#include "live_mask.hpp"
#include "run_state.hpp"
#include "watchdog.hpp"
#include "xcall/cpu.hpp"
#include "xcall/csd.hpp"

namespace xcall_torture {

class activity;

/// Where a nested invoker's operations come from: the top-level operation of
/// the chain, and the depth of the records it makes (1 or more).
struct nest_origin {
  unsigned invoker = 0;
  std::uint64_t op = 0;
  unsigned depth = 1;
  std::uint64_t seed = 0;
};

/// What a nested invoker may not do where it acts.
enum class nest_limit : std::uint8_t {
  none,
  guarded,  ///< inside an irq_guard: no-wait calls only, no tool-side waits
  parked,   ///< inside a blocking_region that parked: no tool-side waits
};

class invoker {
 public:
  /// `host_cpu`: the CPU whose attached host runs this invoker, or no_cpu.
  invoker(run_state& run, unsigned id, xcall::cpu_t host_cpu);
  /// A nested invoker (see above), reporting on `slot`; `async`/`probe`
  /// (from the run's pool) may be null: then it makes no async operation.
  invoker(run_state& run, const nest_origin& origin, activity& slot, nest_limit limit,
          xcall::call_single_data* async, xcall::call_single_data* probe);
  invoker(const invoker&) = delete;
  invoker& operator=(const invoker&) = delete;

  /// Body of an outside invoker thread: operations until the run stops.
  void run_loop();
  /// One operation picked by weight (from an attached host's loop, or a
  /// nested invoker's step).
  void run_one();
  /// A nested invoker inside an irq_guard: one no-wait operation.
  void run_one_nowait();

  unsigned id() const noexcept { return id_; }
  live_mask& mask() noexcept { return *mask_; }

 private:
  struct trampoline_arg {
    invoker* self;
    op_kind kind;
    bool declined;  ///< set by a trampoline run inside the doorbell signal's handler
  };
  static void trampoline(void* arg) noexcept;

  op_kind pick() noexcept;
  void perform(op_kind kind);
  void dispatch(op_kind kind);
  bool from_cpu() const noexcept { return xcall::this_cpu() != xcall::no_cpu; }
  /// The hotplug read lock: a thread that may host a CPU (or runs a
  /// function) only tries.
  bool take_read();
  /// Whether the tool may wait here for a flag or descriptor of its own.
  bool tool_waits() const noexcept { return limit_ == nest_limit::none; }

  void op_single(op_kind kind, bool wait);
  void op_rpc();
  /// Waiting multi-CPU calls, on the live mask (or the online mask: `all`).
  void op_multi(op_kind kind, bool all, bool cond);
  /// No-wait multi-CPU calls: exact targets, freed by the last handler.
  void op_multi_exact(op_kind kind, bool all, bool cond);
  void op_async();
  void op_any(bool wait);
  /// The callable forms; the callable throws on one CPU now and then.
  void op_callable();
  /// on_each_cpu_cond_mask whose predicate throws for one CPU.
  void op_cond_throw();
  void op_rendezvous();

  xcall::cpu_t random_target() noexcept;
  void randomize_live_mask();
  /// Waits for a flag or a descriptor, running our own CPU's calls if we host one.
  template <class Done>
  void wait_for(Done&& done, const char* what, call_record* rec);
  call_record* record(op_kind kind, bool wait, freed_by who);
  void check_error(const call_record* rec, const std::string& what, std::error_code ec);

  run_state& run_;
  activity* slot_ = nullptr;  ///< what this invoker does, for the tool's watchdog
  const unsigned id_;
  const xcall::cpu_t host_cpu_;
  const unsigned depth_ = 0;  ///< depth of the records it makes (nested: 1 or more)
  const nest_limit limit_ = nest_limit::none;
  rng rng_;
  std::uint64_t op_id_ = 0;  ///< nested: the top-level operation's, fixed
  std::uint64_t sub_ = 0;    ///< nested: its operations, counted
  std::uint64_t weight_total_ = 0;
  std::unique_ptr<live_mask> own_mask_;  ///< top-level invokers: the mask churners flip
  live_mask* mask_;                      ///< own, or (nested) a top-level invoker's
  xcall::cpumask private_mask_;          ///< no-wait multi calls: nobody else touches it
  call_window window_;
  std::unique_ptr<expect[]> expect_;
  xcall::call_single_data own_async_;   ///< top-level: carries a record its handler frees
  xcall::call_single_data own_probe_;   ///< top-level: fixed function, exercises EBUSY
  xcall::call_single_data* async_csd_;  ///< own, or (nested) from the pool, or null
  xcall::call_single_data* probe_csd_;
};

/// The async probe's function: counts its runs.
void probe_call(void* info) noexcept;

}  // namespace xcall_torture
