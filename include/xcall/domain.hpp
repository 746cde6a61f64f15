// xcall/domain.hpp — a domain of CPUs and the cross-CPU calls between them
// (the kernel's smp_call_function_single/_many, on_each_cpu* and hotplug).
//
// A domain has nr_cpu_ids() CPUs. Each is hosted by one thread at a time:
// a thread the domain starts (an owned CPU) or an application thread that
// attach()es itself. A call queues a descriptor per target CPU and rings the
// target's doorbell only when its queue was empty, and only with a system call
// when the target sleeps; the target's host runs the function when it drains.
//
// Callers: any thread may call. A thread that hosts a CPU of this domain is
// "this CPU": call_function_many and call_function skip it, on_each_cpu* and
// the single calls addressed to it run the function locally, at once, inside
// an irq_guard the library takes (the kernel's local_irq_save), even when the
// caller is inside a guard of its own (unless the call would wait: EDEADLK);
// such a local copy has run when the call returns, with or without wait. Remote copies run with
// irqs_disabled() false. Every other thread is an outside caller and never a target.
//
// Guarantees (docs/design.md states them in full):
//  1. A CPU that is online and set in the mask for the whole call runs the
//     function exactly once for that call.
//  2. No CPU runs a function twice for one call.
//  3. No call hangs because the mask changed under it, emptied, or named only
//     offline CPUs, nor because a target went offline (a dying CPU runs what
//     was queued for it before it is gone).
//  4. Memory ordering: everything the caller wrote before the call
//     happens-before the function runs on each target; with wait, everything
//     each function wrote happens-before the call returns.
//  5. The doorbell tolerates an empty target set.
//  6. A caller that hosts a CPU of this domain keeps running calls addressed to
//     it while it waits, so handlers may call each other with wait; inside an
//     irq_guard a waiting call fails at once with resource_deadlock_would_occur.
//  7. Calls compose: a function run by a call may make calls of every form,
//     with or without wait, poll(), idle_wait(), enter and leave a
//     blocking_region, take irq_guards, take other CPUs down and up, and throw
//     (callable forms); 1-6 hold for the nested calls and the call that runs
//     it. Where a composition cannot work it fails at once with a named error
//     (EDEADLK for a waiting call or hotplug inside an irq_guard, which
//     includes a function's local copy, and for cpu_down of the caller's own
//     CPU), or, for an attachment ended where it cannot end, aborts naming
//     the CPU.
//
// Thread safety: every member may be called from any thread concurrently,
// except the constructor and destructor. The destructor must not run while
// another thread calls into the domain or hosts one of its CPUs.
//
// Errors (std::error_code, values mirror the kernel's errnos):
//  no_such_device_or_address  target CPU out of range or offline
//  invalid_argument           null func; a mask smaller than nr_cpu_ids()
//  device_or_resource_busy    async descriptor still in flight
//  resource_deadlock_would_occur  waiting, or cpu_down/cpu_up, inside an
//                             irq_guard; cpu_down of the caller's own CPU or
//                             of one it holds beneath a proxy
//  operation_not_supported    cpu_down/cpu_up of a CPU that is not owned
//                             (attached, or of a start_threads=false domain)
//  not_enough_memory          the call could not allocate its caller storage
//                             (nothing queued, run or left claimed)
// A mask with no online target (other than the caller) is success.
// Every function that returns an error_code is [[nodiscard]]: a caller that
// means to drop one writes (void) and says why.
//
// Allocation: a call allocates only on the first use of a piece of caller
// storage: an outside slot (a thread that hosts no CPU of the domain borrows
// one of the domain's slots for the call), a new call-nesting depth on a
// host, and the first multi-CPU call through that storage (per-target
// descriptors, percpu; a call block, classic). Waiting call_function_single
// and call_function_single_async never allocate. A host attached with
// signal delivery gets storage for 4 nesting depths at attach.
//
// fork(): the child has none of the domain's threads, so its CPUs are not
// hosted there and a call from the child waits forever (the stall watchdog
// reports it). Use a domain only in the process that built it; a child
// execs, or builds its own domain, and leaves with exec or _exit (destroying
// the parent's domain in the child ends the child).
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <system_error>
#include <type_traits>
#include <vector>
#include <utility>

#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"
#include "xcall/export.h"
#include "xcall/options.hpp"
#include "xcall/stats.hpp"
#include "xcall/types.hpp"

namespace xcall {

namespace detail {
class domain_impl;

// Runs a callable from a call_func_t and keeps the first exception it throws,
// to be rethrown in the caller once every target has finished.
template <class F>
struct callable_call {
  F& f;
  std::atomic<bool> failed{false};
  std::exception_ptr error{};

  static void run(void* self) noexcept {
    auto* call = static_cast<callable_call*>(self);
    try {
      call->f();
    } catch (...) {
      // Only the first thrower writes `error`; the waiting caller reads it
      // after the call returns, ordered by the descriptor's release/acquire.
      if (!call->failed.exchange(true, std::memory_order_relaxed)) {
        call->error = std::current_exception();
      }
    }
  }
  std::error_code finish(std::error_code ec) {
    if (error) std::rethrow_exception(error);
    return ec;
  }
};
}  // namespace detail

class domain;

/// The RAII handle of an attached CPU: while it lives, the thread that called
/// domain::attach() hosts the CPU. Ending it (destructor or detach()) runs
/// what is queued for the CPU and takes it offline; that must happen in the
/// hosting thread's own code (inside an irq_guard is fine: the CPU's "irqs
/// off" flag is cleared for the next host). It aborts with a message on a
/// thread that does not host the CPU, inside a blocking_region, inside a
/// function run by a call (from poll, idle_wait, the host's own wait or its
/// doorbell signal handler, or a local copy: a self-addressed call or the
/// caller's own part of on_each_cpu*) and inside a
/// stall callback. A thread that exits while it still hosts the CPU (the
/// handle moved elsewhere) aborts naming the CPU. Movable, not copyable.
class XCALL_EXPORT cpu_attachment {
 public:
  cpu_attachment() noexcept = default;
  cpu_attachment(cpu_attachment&& other) noexcept;
  cpu_attachment& operator=(cpu_attachment&& other) noexcept;
  ~cpu_attachment();

  /// The hosted CPU, or no_cpu for an empty handle.
  cpu_t cpu() const noexcept { return cpu_; }
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  /// Drains the CPU and takes it offline now; the handle becomes empty.
  void detach();
  /// With delivery_mode::fd, the CPU's doorbell file descriptor (an eventfd,
  /// non-blocking, close-on-exec, owned by the attachment and closed by its
  /// end, after the CPU ran what was queued): add it to the host's epoll set,
  /// poll(2) array or io_uring. Readable only between a loop_wait's start and
  /// end; the library reads it itself. -1 for other modes or an empty handle.
  int doorbell_fd() const noexcept;

 private:
  friend class domain;
  cpu_attachment(detail::domain_impl* impl, cpu_t cpu) noexcept : impl_(impl), cpu_(cpu) {}
  detail::domain_impl* impl_ = nullptr;
  cpu_t cpu_ = no_cpu;
};

class XCALL_EXPORT domain {
 public:
  /// Builds the domain and, with start_threads, starts its CPUs' threads.
  /// Bad options throw std::invalid_argument naming the option; so does a
  /// bad XCALL_STALL_TIMEOUT_MS (not a whole number of milliseconds up to a
  /// year), naming the variable.
  explicit domain(const domain_options& options = {});
  /// Takes every owned CPU down (each runs what is queued for it) and joins
  /// its threads. A CPU still attached is a contract violation: reported on
  /// stderr by name, then abort().
  ~domain();
  domain(const domain&) = delete;
  domain& operator=(const domain&) = delete;
  domain(domain&&) = delete;
  domain& operator=(domain&&) = delete;

  cpu_t nr_cpu_ids() const noexcept;
  /// The live online mask: bits flip as CPUs come and go.
  const cpumask& online_mask() const noexcept;
  bool cpu_online(cpu_t cpu) const noexcept;
  const domain_options& options() const noexcept;
  /// A snapshot of every CPU's counters (xcall/stats.hpp). Allocates.
  std::vector<cpu_stats> stats() const;

  /// Hotplug of owned CPUs. cpu_down returns once the CPU is offline and has
  /// run every call queued for it; later single calls to it fail with ENXIO.
  /// A function drained there meanwhile sees cpu_online() false; one already
  /// running (it served the request inside its own wait) finishes after
  /// cpu_down returns. Both are idempotent. Any thread may ask, including a function run by a
  /// call on any CPU, also when the target CPU is the one waiting for that
  /// function (a CPU serves hotplug requests at every drain, its waits
  /// included). Concurrent requests for one CPU: the latest wins, and each
  /// returns once the CPU has acted on its request or a later one (so a
  /// cpu_down racing a cpu_up may return with the CPU online). No lock is
  /// held while a request waits. Errors: ENXIO (out of range), ENOTSUP (not
  /// an owned CPU: attached, or of a start_threads=false domain), EDEADLK
  /// (either inside an irq_guard; cpu_down of the caller's own CPU or of one
  /// it holds beneath a proxy; cpu_up of those works).
  [[nodiscard]] std::error_code cpu_down(cpu_t cpu);
  [[nodiscard]] std::error_code cpu_up(cpu_t cpu);

  /// Runs func(info) on `cpu`. On the caller's own CPU it runs locally, at
  /// once, inside an irq_guard the library takes, and has run when the call
  /// returns, with or without wait; without wait, even inside the caller's
  /// own irq_guard.
  /// Errors: EINVAL, ENXIO, EDEADLK (wait inside an irq_guard), ENOMEM
  /// (no wait: caller storage).
  [[nodiscard]] std::error_code call_function_single(cpu_t cpu, call_func_t func, void* info,
                                                     bool wait);
  /// Queues the caller-owned descriptor to `cpu` without waiting. On the
  /// caller's own CPU the descriptor is released and the function run at
  /// once, locally, inside an irq_guard, before the call returns.
  /// Errors: EINVAL (null csd.func), ENXIO, EBUSY (csd still in flight).
  [[nodiscard]] std::error_code call_function_single_async(cpu_t cpu, call_single_data& csd);
  /// Runs func(info) on every online CPU of `mask` but the caller.
  [[nodiscard]] std::error_code call_function_many(const cpumask& mask, call_func_t func,
                                                   void* info, bool wait);
  /// Runs func(info) on every online CPU but the caller.
  [[nodiscard]] std::error_code call_function(call_func_t func, void* info, bool wait);
  /// Runs func(info) on one online CPU of `mask`, the caller's own first.
  /// ENXIO when no CPU of the mask is online.
  [[nodiscard]] std::error_code call_function_any(const cpumask& mask, call_func_t func, void* info,
                                                  bool wait);
  /// Runs func(info) on every online CPU, the caller's own included (locally,
  /// inside an irq_guard, after the remote copies are queued: a waiting call
  /// made by that local copy returns EDEADLK, one made by a remote copy
  /// works).
  [[nodiscard]] std::error_code on_each_cpu(call_func_t func, void* info, bool wait);
  [[nodiscard]] std::error_code on_each_cpu_mask(const cpumask& mask, call_func_t func, void* info,
                                                 bool wait);
  /// As on_each_cpu_mask, on the CPUs for which the caller's cond(cpu, info)
  /// is true; a null cond means every CPU of the mask (as in the kernel).
  /// cond is evaluated on the caller, once per online CPU of the mask, the
  /// caller's own first, and every cond runs before anything is queued: a
  /// cond that throws propagates out of the call with nothing queued or run.
  [[nodiscard]] std::error_code on_each_cpu_cond_mask(cond_func_t cond, call_func_t func,
                                                      void* info, bool wait, const cpumask& mask);

  // Callable forms: always wait, run f() on each target; they allocate as the
  // function-pointer forms do (the single form never). If f throws, the first
  // exception is rethrown here once every target is done; otherwise they
  // return the underlying call's error code. An error of a call made inside
  // f (EDEADLK from the local copy, say) is f's to see, not this result.
  template <class F>
  [[nodiscard]] std::error_code call_function_single(cpu_t cpu, F&& f) {
    detail::callable_call<std::remove_reference_t<F>> call{f};
    return call.finish(call_function_single(cpu, &decltype(call)::run, &call, true));
  }
  template <class F>
  [[nodiscard]] std::error_code call_function_many(const cpumask& mask, F&& f) {
    detail::callable_call<std::remove_reference_t<F>> call{f};
    return call.finish(call_function_many(mask, &decltype(call)::run, &call, true));
  }
  template <class F>
  [[nodiscard]] std::error_code on_each_cpu(F&& f) {
    detail::callable_call<std::remove_reference_t<F>> call{f};
    return call.finish(on_each_cpu(&decltype(call)::run, &call, true));
  }
  template <class F>
  [[nodiscard]] std::error_code on_each_cpu_mask(const cpumask& mask, F&& f) {
    detail::callable_call<std::remove_reference_t<F>> call{f};
    return call.finish(on_each_cpu_mask(mask, &decltype(call)::run, &call, true));
  }

  /// The calling thread becomes the host of `cpu`, which comes online; calls
  /// reach it as `how` says (xcall/options.hpp, docs/attached-threads.md).
  /// Throws std::system_error: ENOTSUP (domain starts its own threads), ENXIO
  /// (out of range), EINVAL (delivery not a delivery_mode value), EBUSY (CPU
  /// already hosted, or this thread already hosts a CPU, or the doorbell
  /// signal already has a handler that is not xcall's), EAGAIN (signal
  /// delivery and no free real-time signal), or sigaction's error. Signal
  /// delivery allocates the host's caller storage (4 nesting depths) here:
  /// std::bad_alloc when that fails, and the CPU stays free.
  [[nodiscard]] cpu_attachment attach(cpu_t cpu, const attach_options& how = {});

 private:
  std::unique_ptr<detail::domain_impl> impl_;
};

}  // namespace xcall
