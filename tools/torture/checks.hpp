// checks.hpp — the per-call record every tool call passes as its argument,
// the function every call runs (handle_call), and the verification of a
// call's outcome against what the bracket around it proves.
//
// A record carries the caller's plain writes (checked by each handler), one
// run counter and one plain result slot per CPU (written by the handler on
// that CPU, read by a waiting caller after the call), and what the caller
// knows in advance about who must run it. Who frees it depends on the call:
//   caller    waiting calls: after the call returned and was verified;
//   handler   no-wait single/async/any calls: the one handler frees it;
//   last_ref  no-wait multi-CPU calls: a reference per expected run plus one
//             for the caller; whoever drops the last one verifies and frees;
//   rpc       no-wait single call: the handler sets `done`, the caller waits
//             for it, verifies and frees.
// So a run that comes late or twice touches freed memory, which the
// AddressSanitizer build reports. Inside the doorbell signal's handler
// (--delivery signal) nothing may be freed: there the record is retired to a
// lock-free list instead, and reclaim_records() frees it soon after from the
// main thread (a late run still finds freed memory; a duplicate run before
// the reclaim is caught by the run counters).
//
// handle_call() is async-signal-safe (signal_safe.hpp): it counts, checks,
// writes its slots, retires instead of freeing, and words failures with
// fixed_text; cond_predicate() runs on the caller, never in a handler.
//
// Thread safety: a record is written by its caller before the call, then by
// handlers only in their own CPU's slots and counters, then read by whoever
// frees it.
//
// Memory ordering: the caller's plain writes reach handlers only through the
// library's guarantee 4 (that is the check); the handlers' plain writes reach
// a waiting caller the same way. ran[] is relaxed for the same reason: the
// library orders it, and ThreadSanitizer reports the plain slots if it does
// not. refs: acq_rel, so the last dropper sees every other handler's run.
// done: release by the handler, acquire by the RPC's caller. The retired
// list: release push (handlers), acquire exchange (reclaim_records()).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "live_mask.hpp"
#include "options.hpp"
#include "run_state.hpp"
#include "signal_safe.hpp"
#include "tally.hpp"
#include "xcall/cpumask.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

/// What the caller knows about one CPU and one call.
enum class expect : std::uint8_t {
  never,  ///< must not run it: not in the mask or offline for the whole call, or excluded
  maybe,  ///< may run it at most once: its bit or its online state changed
  once,   ///< must run it exactly once
};

enum class freed_by : std::uint8_t { caller, handler, last_ref, rpc };

struct call_record {
  call_record(run_state& run, op_kind kind, bool wait, freed_by who, unsigned invoker,
              std::uint64_t op_id, unsigned depth, std::uint64_t sub);
  call_record(const call_record&) = delete;
  call_record& operator=(const call_record&) = delete;

  run_state& run;
  const op_kind kind;
  const bool wait;  ///< the caller waits (for the call, or for `done`)
  const freed_by who;
  const unsigned invoker;
  const std::uint64_t op_id;
  const unsigned depth;     ///< 0: a top-level call; n: made by a function n levels deep
  const std::uint64_t sub;  ///< nested: the operation's number in its nested invoker
  xcall::cpu_t target = xcall::no_cpu;  ///< single and async calls
  /// callable / cond-throw: the CPU whose run (predicate) throws, and the
  /// thrower's mark, set just before it throws.
  xcall::cpu_t throw_cpu = xcall::no_cpu;
  std::atomic<bool> threw{false};
  xcall::cpu_t caller_cpu = xcall::no_cpu;
  std::thread::id caller_thread;

  // The caller's writes before the call (plain on purpose: the library must
  // order them). Handlers check stamp_check == ~stamp == the expected value.
  std::uint64_t stamp = 0;
  std::uint64_t stamp_check = 0;
  std::unique_ptr<expect[]> expected;  ///< no-wait multi calls: exact targets
  std::unique_ptr<bool[]> cond_true;   ///< cond calls: the predicate's answers
  std::unique_ptr<std::atomic<std::uint32_t>[]> cond_calls;
  const live_mask* mask = nullptr;                 ///< no-wait any: the live mask ...
  std::unique_ptr<live_mask::view[]> mask_before;  ///< ... and its bracket's first half
  unsigned rendezvous_of = 0;                      ///< rendezvous: how many targets must meet

  // The handlers' writes.
  std::unique_ptr<std::atomic<std::uint32_t>[]> ran;
  std::unique_ptr<std::uint64_t[]> out;  ///< plain: one slot per CPU
  std::atomic<int> refs{0};
  std::atomic<bool> done{false};
  std::atomic<unsigned> arrived{0};     ///< rendezvous: functions started
  call_record* retired_next = nullptr;  ///< the retired list (freed in a signal handler)

  /// "many-wait #12 of invoker 1 from CPU 2 (seed 42)": for failure messages.
  std::string describe() const;
  /// The same, appended to a fixed text (async-signal-safe).
  void describe(fixed_text& text) const noexcept;
  /// Sets the caller's stamp; call last before the call.
  void seal() noexcept;
  std::uint64_t expected_stamp() const noexcept;
  std::uint64_t out_value(xcall::cpu_t cpu) const noexcept;
};

/// "many-wait #12 of invoker 1 from CPU 2 to CPU 3 (seed 42)": names one
/// operation in failure messages (from its seed, invoker and number it can be
/// found again in a rerun).
std::string describe_call(const run_state& run, op_kind kind, unsigned invoker, std::uint64_t op_id,
                          xcall::cpu_t caller_cpu, xcall::cpu_t target, unsigned depth = 0,
                          std::uint64_t sub = 0);

/// Allocates a record (counting no-wait ones) and frees it (counting those).
/// Inside the doorbell handler free_record() retires it instead (async-
/// signal-safe then).
call_record* new_record(run_state& run, op_kind kind, bool wait, freed_by who, unsigned invoker,
                        std::uint64_t op_id, unsigned depth = 0, std::uint64_t sub = 0);
void free_record(call_record* rec);
/// Frees the records retired inside signal handlers; returns how many. Any
/// thread but a signal handler; the main thread calls it as it ticks, and
/// once more after every host has left.
std::size_t reclaim_records();
/// A record whose call threw before it queued anything: kept until the
/// domain is gone, then verify_kept() checks that no CPU ever ran it (a
/// buggy library may have queued it after all) and frees it.
void keep_until_end(call_record* rec);
/// After the domain is destroyed (every CPU drained, every host gone).
void verify_kept();

/// A call's error `ec` is ENOMEM and --fault fail_alloc is armed: counted
/// as a legal outcome (the call did nothing). Any other error: false.
bool enomem_allowed(const run_state& run, std::error_code ec);

/// The function of every tool call: checks, delay, then completion by `who`.
void handle_call(void* info) noexcept;

/// A failed check inside a function the tool sends: "<what>: <before>CPU
/// <cpu><after>" (no CPU part for no_cpu), where <what> describes `rec`, or
/// is `label` when rec is null. Inside the doorbell handler (`in_signal`) it
/// goes through fail_signal_safe(); async-signal-safe then.
void handler_fail(const call_record* rec, const char* label, bool in_signal, check c,
                  const char* before, xcall::cpu_t cpu, const char* after);
/// --attached: a function the tool sent runs for `cpu` on this thread: not
/// while the CPU's host is inside its guarded computation (irq-guard); on the
/// host thread outside its blocking_region, or on another thread only by a
/// proxy while the host is parked (proxy). Counts by-proxy runs, and the
/// host thread's runs for its own CPU (host_marks::own_runs).
void check_where_it_runs(const run_state& run, const call_record* rec, const char* label,
                         bool in_signal, xcall::cpu_t cpu);
/// The predicate of cond calls: rec->cond_true[cpu], counted per CPU.
bool cond_predicate(xcall::cpu_t cpu, void* info) noexcept;
/// A no-wait multi call's caller drops its reference (last: verify, free).
void drop_ref(call_record* rec);

/// The bracket around a call: each mask bit and each CPU's online state,
/// before and after.
class call_window {
 public:
  explicit call_window(xcall::cpu_t nr_cpus);
  /// `mask` null: the call has no mask of its own (it uses the online mask).
  void before(const run_state& run, const live_mask* mask);
  void after(const run_state& run, const live_mask* mask);
  held in_mask(xcall::cpu_t cpu) const noexcept;
  held online(xcall::cpu_t cpu) const noexcept;
  /// The first half of a mask bit's bracket (for a no-wait handler's look).
  const live_mask::view& mask_view(xcall::cpu_t cpu) const noexcept { return mask1_[cpu]; }

  /// Expectations of a multi-CPU call. `runs_self`: the caller's own CPU
  /// runs it locally when in the mask (on_each_cpu*); `cond`: the predicate.
  void expectations(xcall::cpu_t self, bool runs_self, const bool* cond, expect* out) const;

 private:
  bool has_mask_ = false;
  std::vector<live_mask::view> mask1_, mask2_, online1_, online2_;
};

/// Exact expectations of a no-wait multi-CPU call made under the hotplug
/// read lock, with a mask nobody else changes (`mask` null: online mask).
/// Also checks the library's online mask against the tool's view.
void exact_expectations(const run_state& run, const xcall::cpumask* mask, xcall::cpu_t self,
                        bool runs_self, const bool* cond, expect* out);

/// After a waiting call returned (or an RPC's flag was seen): every CPU's
/// run count against `expected`, and the handlers' writes.
void verify_runs(const call_record& rec, const expect* expected);
/// After a cond call returned: the predicate ran at most once per CPU.
void verify_cond_calls(const call_record& rec);

}  // namespace xcall_torture
