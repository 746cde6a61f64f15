// domain_impl.hpp — the domain behind xcall::domain: its CPUs, their hosts,
// the calls and the waits. Private to the library.
//
// Files:   domain.cpp    construction, destruction, the public wrappers
//          options.cpp   option validation
//          calls.cpp     the public call forms, validation, local runs; the
//                        one switch on the engine
//          percpu_engine.cpp  the per-CPU queues (call_single_queue) and
//                        multi-CPU calls over them
//          classic_engine.cpp multi-CPU calls over the global list of call
//                        blocks (state: classic_engine.hpp)
//          drain.cpp     running a CPU's queue (the IPI handler)
//          waiting.cpp   csd_lock, csd_lock_wait, csd_unlock
//          stall_watch.cpp  the stall watchdog of a wait
//          stats.cpp     per-CPU counters (counters.hpp) and their formatter
//          cpu.cpp       the calling thread's CPU: this_cpu, poll, idle_wait,
//                        irq_guard, self_cpu, drainable_self
//          hosting.cpp   owned CPU threads, attach/detach
//          hotplug.cpp   hotplug requests, going online and offline
//          outside_slots.cpp  caller storage (caller_scope.hpp)
//          signal_doorbell.cpp  delivery_mode::signal: the signal and its handler
//          proxy.cpp     blocking regions, the run lock, proxy execution
//          nudge.cpp     a waiter's help: proxying, re-sending signals
//
// Ordering: each file lists its own edges; docs/memory-ordering.md has them
// all in one table.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

#include "cache_line.hpp"
#include "caller_storage.hpp"
#include "cpu_state.hpp"
#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"
#include "xcall/options.hpp"
#include "xcall/stall.hpp"
#include "xcall/stats.hpp"
#include "xcall/types.hpp"

namespace xcall::detail {

/// Validates and resolves options (nr_cpus 0 -> hardware concurrency);
/// throws std::invalid_argument naming the bad option.
domain_options validate_options(const domain_options& options);

class fan_out_doorbell;
class stall_watch;
class target_nudge;
struct thread_context;

/// A proxy runs as the CPU it borrowed, but the calls of the CPUs it holds
/// beneath (its own, and those it proxied before this one) may be what the
/// borrowed call waits for: every wait and safe point of a proxy runs them
/// too, each as its own CPU (they swap places for the drain, and swap back
/// inside a nested one). Returns how many calls it ran; does nothing when
/// not proxying. proxy.cpp.
unsigned drain_held(thread_context& ctx) noexcept;

/// Every safe point and wait of this thread runs this: the calls of `self`
/// (the CPU it acts as and may drain now; nullptr: none) and of every CPU
/// it holds beneath a proxy. Returns how many calls ran. proxy.cpp.
unsigned drain_acting(thread_context& ctx, cpu_state* self) noexcept;
/// At the end of the outermost irq_guard: runs the parked CPUs that no-wait
/// sends inside it could not (thread_context::owed_help).
void run_owed_help(thread_context& ctx) noexcept;

/// How many outside slots a domain of nr_cpus CPUs has:
/// max(16, min(1024, 4 x hardware threads + nr_cpus)). outside_slots.cpp.
cpu_t outside_slot_count(cpu_t nr_cpus) noexcept;

/// One borrowable caller storage for threads that host no CPU of the domain.
struct alignas(kCacheLine) outside_slot {
  std::atomic<bool> busy{false};
  std::unique_ptr<caller_storage> storage;
};
static_assert(sizeof(outside_slot) == kCacheLine,
              "borrowers of neighbouring slots must not share a line");

class domain_impl {
 public:
  explicit domain_impl(const domain_options& options);
  ~domain_impl();
  domain_impl(const domain_impl&) = delete;
  domain_impl& operator=(const domain_impl&) = delete;

  const domain_options& options() const noexcept { return options_; }
  cpu_t nr_cpu_ids() const noexcept { return options_.nr_cpus; }
  const cpumask& online_mask() const noexcept { return online_; }
  cpu_state& cpu(cpu_t id) noexcept { return cpus_[id]; }

  // calls.cpp
  [[nodiscard]] std::error_code call_single(cpu_t cpu, call_func_t func, void* info, bool wait);
  [[nodiscard]] std::error_code call_single_async(cpu_t cpu, call_single_data& csd);
  [[nodiscard]] std::error_code call_many(const cpumask& mask, call_func_t func, void* info,
                                          bool wait, bool run_self, cond_func_t cond);
  [[nodiscard]] std::error_code call_any(const cpumask& mask, call_func_t func, void* info,
                                         bool wait);

  // hotplug.cpp
  [[nodiscard]] std::error_code cpu_down(cpu_t cpu);
  [[nodiscard]] std::error_code cpu_up(cpu_t cpu);
  /// An owned CPU's host takes up the latest hotplug request, if it has not
  /// yet; drain() calls it first. Re-entrant (see hotplug.cpp).
  void serve_hotplug(cpu_state& c) noexcept;

  // hosting.cpp
  /// Throws std::system_error naming what is wrong (domain.hpp lists them).
  void attach(cpu_t cpu, const attach_options& how);
  void detach(cpu_t cpu);

  // drain.cpp: runs what is queued for `c`; returns how many calls ran.
  unsigned drain(cpu_state& c) noexcept;
  /// Runs c.batch, the taken list, oldest first, popping as it goes.
  unsigned run_batch(cpu_state& c) noexcept;

  // waiting.cpp: the kernel's csd_lock / csd_lock_wait / csd_unlock.
  /// Waits until `csd` is out of flight (its previous call is done), then
  /// marks it in flight for a new call (sync: a waiting one). The caller
  /// fills it and queues it.
  void csd_lock(call_single_data& csd, bool sync, const cpumask* owing = nullptr) noexcept;
  /// Waits until `csd` is released, running this thread's calls meanwhile.
  /// `owing`: the live mask of the CPUs that still owe the call, when the
  /// descriptor is a classic call block's (see nudge.hpp).
  void csd_lock_wait(call_single_data& csd, const cpumask* owing = nullptr) noexcept;
  /// The same, spinning for `spin` (not options().idle_spin) before it sleeps.
  void csd_lock_wait(call_single_data& csd, const cpumask* owing,
                     std::chrono::nanoseconds spin) noexcept;
  /// Ends the flight of `csd` and wakes its owner if it sleeps.
  void csd_unlock(call_single_data& csd) noexcept;

  // signal_doorbell.cpp
  /// The doorbell signal arrived (in_handler) or was deferred and is due.
  void doorbell_interrupt(cpu_state& c, bool in_handler) noexcept;
  /// Runs the queue as the doorbell handler does, until nothing is pending.
  void run_interrupt(cpu_state& c, thread_context& ctx) noexcept;

  // proxy.cpp
  /// Parks the host (blocking_region); returns the state to resume in.
  std::uint32_t park(cpu_state& c) noexcept;
  void unpark(cpu_state& c, std::uint32_t resume) noexcept;
  /// Runs a parked proxy CPU's calls as that CPU, if its run lock is free;
  /// after releasing the lock, again while calls arrived meanwhile (a no-wait
  /// sender that found the lock taken left them to us). Whether any ran.
  [[nodiscard]] bool try_proxy(cpu_state& target) noexcept;
  /// After a no-wait call to `c`: if its host is parked with proxy on, run
  /// its calls now as its proxy (calls.cpp).
  void help_parked(cpu_state& c) noexcept;
  /// Whether some attached CPU may need a waiter's help (nudge.hpp).
  bool has_attention_hosts() const noexcept {
    return attention_hosts_.load(std::memory_order_relaxed) != 0;
  }

  /// Hands a stall report to options().on_stall, or prints it on stderr.
  void report_stall(const stall_report& report) const;
  /// A snapshot of every CPU's counters.
  std::vector<cpu_stats> stats() const;

  /// The CPU of this domain the calling thread hosts, or no_cpu.
  cpu_t self_cpu() const noexcept;
  /// The calling thread's CPU state if it hosts a CPU of this domain and may
  /// run calls now (no irq_guard), else nullptr.
  cpu_state* drainable_self() const noexcept;

  /// Waits like a host does: spins for idle_spin (if `spin`), then sleeps,
  /// until has_work() or the deadline. resume_state is the state to return in.
  /// Defined in doorbell.hpp (include it to use it).
  template <class HasWork>
  void idle_until(cpu_state& c, HasWork&& has_work, std::chrono::steady_clock::time_point deadline,
                  std::uint32_t resume_state);

 private:
  friend class caller_scope;

  // waiting.cpp
  bool spin_until_unlocked(call_single_data& csd, cpu_state* self, target_nudge& nudge,
                           std::chrono::nanoseconds spin) noexcept;
  void sleep_until_unlocked(call_single_data& csd, cpu_state& self, stall_watch& watch,
                            target_nudge& nudge) noexcept;

  // proxy.cpp
  void take_run_lock(cpu_state& c) noexcept;
  /// Frees the run lock (true) or hands it to the host leaving its region.
  static bool release_run_lock(cpu_state& c) noexcept;
  /// One proxy run of `target`'s calls, the run lock and the doorbell mask
  /// held; how many ran.
  unsigned proxy_once(thread_context& ctx, cpu_state& target) noexcept;

  // calls.cpp: a no-wait single call through storage the caller holds.
  [[nodiscard]] std::error_code call_single_nowait(caller_storage& st, cpu_t cpu, call_func_t func,
                                                   void* info);

  // percpu_engine.cpp
  /// not_enough_memory when the per-target descriptors cannot be made.
  [[nodiscard]] std::error_code queue_many(caller_storage& st, call_func_t func, void* info,
                                           bool wait);
  void wait_many(caller_storage& st);
  /// Waits until the descriptors of every CPU in `targets` are released.
  void wait_all_released(padded_csd* csds, const cpumask& targets) noexcept;
  /// `fan_out`: the multi-CPU call this push is part of, whose doorbells
  /// ring together after its last push; nullptr rings at once.
  [[nodiscard]] bool call_single_queue(cpu_t target, call_single_data& csd,
                                       fan_out_doorbell* fan_out = nullptr) noexcept;

  // classic_engine.cpp
  /// not_enough_memory when the call block cannot be made.
  [[nodiscard]] std::error_code classic_queue_many(caller_storage& st, const cpumask& mask,
                                                   cpu_t self, call_func_t func, void* info,
                                                   bool wait);
  void classic_wait_many(caller_storage& st);
  /// Consumes the CPU's "a block may name you" flag (the call-function IPI).
  bool classic_take_pending(cpu_state& c) noexcept;
  unsigned classic_walk(cpu_state& c) noexcept;
  /// Clears c's bit of the block: c owes it no more. False (and a warning)
  /// if the bit was clear already: a run twice.
  [[nodiscard]] static bool claim_run(call_block& b, cpu_state& c) noexcept;
  static void run_block_func(cpu_state& c, call_func_t func, void* info) noexcept;
  void classic_cpu_dying(cpu_state& c) noexcept;
  /// out = mask & online - self, narrowed to the CPUs where cond (if any)
  /// holds; cond is evaluated once per CPU, on the caller.
  const cpumask& snapshot_targets(cpumask& out, const cpumask& mask, cpu_t self, cond_func_t cond,
                                  void* info);

  // hosting.cpp
  void start_owned_cpus();
  void stop_owned_cpus() noexcept;
  void owned_cpu_main(cpu_state& c);
  void check_no_attached_cpus() const noexcept;
  /// The domain's doorbell signal, installed on first use (throws).
  int doorbell_signal();
  void prepare_signal_storage(cpu_state& c);

  // hotplug.cpp
  void bring_online(cpu_state& c) noexcept;
  /// Clears the online bit and closes the queue, taking what was queued into
  /// c.batch; runs no calls.
  void take_offline(cpu_state& c) noexcept;
  /// Runs what going offline took (the dying CPU's last drain).
  void finish_offline(cpu_state& c) noexcept;
  void go_offline(cpu_state& c) noexcept;
  /// An owned CPU's thread starts: online, and the first request served.
  void come_up(cpu_state& c) noexcept;
  void publish_served(cpu_state& c, std::uint32_t request) noexcept;
  /// Offline owned CPU: waits for the next request; false on exit.
  bool park_offline(cpu_state& c) noexcept;
  std::uint32_t post_request(cpu_state& c, control_value value) noexcept;
  void wait_served(cpu_state& c, std::uint32_t request) noexcept;
  [[nodiscard]] std::error_code check_hotplug(cpu_t id, bool down) const noexcept;
  [[nodiscard]] std::error_code hotplug(cpu_t id, control_value value);

  // outside_slots.cpp
  /// Borrows a free slot; with more outside callers than slots, sleeps
  /// until one comes back (never spins: a crowd must not eat the CPUs its
  /// targets' hosts need).
  outside_slot& acquire_slot() noexcept;
  void release_slot(outside_slot& slot) noexcept;
  outside_slot* try_acquire_slot(cpu_t& hint) noexcept;
  /// Waits up to kStorageGrace for every descriptor of `st` to come back,
  /// running this thread's calls meanwhile (unless `guarded`). Whether they
  /// did.
  [[nodiscard]] bool await_idle(const caller_storage& st, bool guarded) noexcept;
  /// How long a host gives an earlier call through its storage before it
  /// takes a spare one (caller_scope).
  static constexpr std::chrono::milliseconds kStorageGrace{20};

  /// The host's caller storage at `depth`, made on first use; nullptr when
  /// that allocation fails.
  caller_storage* host_storage(cpu_state& c, unsigned depth) noexcept {
    return storage_at(c.storage, depth);
  }
  /// The storage at `depth` of a stack of storages, made on first use;
  /// nullptr when it cannot be allocated.
  caller_storage* storage_at(std::vector<std::unique_ptr<caller_storage>>& stack,
                             unsigned depth) noexcept;

  const domain_options options_;
  cpumask online_;
  std::unique_ptr<cpu_state[]> cpus_;
  cpu_t nr_slots_;
  std::unique_ptr<outside_slot[]> slots_;
  /// Outside callers asleep waiting for a slot, and the word they sleep on
  /// (bumped by a release that sees a sleeper). outside_slots.cpp.
  alignas(kCacheLine) std::atomic<std::uint32_t> slot_sleepers_{0};
  std::atomic<std::uint32_t> slot_returns_{0};
  /// The classic engine's list and barrier; null in a domain of the percpu
  /// engine (the drain path tests only this).
  std::unique_ptr<classic_domain> classic_;
  std::mutex signal_mutex_;  ///< guards doorbell_signal_
  int doorbell_signal_ = 0;  ///< 0 until the first signal attach
  /// Attached CPUs with signal delivery or proxy: waiters nudge only if any.
  std::atomic<unsigned> attention_hosts_{0};
};

}  // namespace xcall::detail
