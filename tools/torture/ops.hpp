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
// Thread safety: an invoker is used by one thread at a time (its own, or the
// CPU running its trampoline while its thread waits for it); its live mask is
// shared with the churners; its async descriptors with the CPUs running them.
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

class invoker {
 public:
  /// `host_cpu`: the CPU whose attached host runs this invoker, or no_cpu.
  invoker(run_state& run, unsigned id, xcall::cpu_t host_cpu);
  invoker(const invoker&) = delete;
  invoker& operator=(const invoker&) = delete;

  /// Body of an outside invoker thread: operations until the run stops.
  void run_loop();
  /// One operation picked by weight (from an attached host's loop).
  void run_one();

  unsigned id() const noexcept { return id_; }
  live_mask& mask() noexcept { return mask_; }
  /// The async probe descriptor: for the end-of-run check.
  const xcall::call_single_data& probe() const noexcept { return probe_csd_; }

 private:
  struct trampoline_arg {
    invoker* self;
    op_kind kind;
    bool declined;  ///< set by a trampoline run inside the doorbell signal's handler
  };
  static void trampoline(void* arg) noexcept;

  op_kind pick() noexcept;
  void perform(op_kind kind);
  bool from_cpu() const noexcept { return xcall::this_cpu() != xcall::no_cpu; }

  void op_single(op_kind kind, bool wait);
  void op_rpc();
  /// Waiting multi-CPU calls, on the live mask (or the online mask: `all`).
  void op_multi(op_kind kind, bool all, bool cond);
  /// No-wait multi-CPU calls: exact targets, freed by the last handler.
  void op_multi_exact(op_kind kind, bool all, bool cond);
  void op_async();
  void op_any(bool wait);

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
  rng rng_;
  std::uint64_t op_id_ = 0;
  std::uint64_t weight_total_ = 0;
  live_mask mask_;
  xcall::cpumask private_mask_;  ///< no-wait multi calls: nobody else touches it
  call_window window_;
  std::unique_ptr<expect[]> expect_;
  xcall::call_single_data async_csd_;  ///< carries a record the handler frees
  xcall::call_single_data probe_csd_;  ///< fixed function: exercises EBUSY
};

/// The async probe's function: counts its runs.
void probe_call(void* info) noexcept;

}  // namespace xcall_torture
