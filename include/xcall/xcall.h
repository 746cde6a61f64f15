/* xcall/xcall.h — the C API: xcall's cross-CPU function calls for C11
 * programs (and for C++ code that wants a C ABI).
 *
 * Everything in xcall/xcall.hpp, with the kernel's conventions: functions
 * are `void (*)(void *info)` (smp_call_func_t), a mask is a handle to a live
 * cpumask, every fallible function returns 0 (or a non-negative result) on
 * success and a negative errno on failure, and xcall_last_error() says what
 * went wrong on this thread. docs/c-api.md maps each function to the C++
 * API and to kernel/smp.c and states the ownership and lifetime rules; the
 * C++ headers (xcall/domain.hpp, cpu.hpp, cpumask.hpp, csd.hpp) remain the
 * contract for the semantics, which this API does not change.
 *
 * Errors: no C++ exception leaves a function of this header. A failure that
 * the C++ API throws becomes an errno: std::system_error its own code,
 * std::invalid_argument, std::out_of_range, std::length_error and
 * std::domain_error -EINVAL, std::overflow_error and std::range_error
 * -ERANGE, std::bad_alloc -ENOMEM, anything else -EIO (a callback written in
 * C++ may throw anything). The only thing that still unwinds through is
 * thread cancellation (glibc's forced unwind), which must. Contract
 * violations that the C++ API answers with abort() (ending an attachment
 * where it cannot end, destroying a domain that still has attached CPUs, a
 * function that throws) end the process here too.
 *
 * Thread safety: as the C++ API. A domain's functions may be called from any
 * thread at once, except xcall_domain_create/destroy. A mask's single-bit
 * functions are one atomic operation each; its whole-mask functions go word
 * by word. Everything about "this CPU" (poll, idle_wait, the irq mask,
 * blocking regions, loop waits) acts on the calling thread only.
 *
 * Memory ordering: as the C++ API (docs/api.md, "Memory ordering at a
 * glance"): everything the caller wrote before a call happens-before the
 * function runs on each target; with wait, everything each function wrote
 * happens-before the call returns. Mask writes are releases, mask reads
 * acquires. */
#ifndef XCALL_XCALL_H
#define XCALL_XCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <xcall/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- vocabulary ------------------------------------------------------- */

/** "No CPU": what xcall_this_cpu() returns on a thread that hosts none. */
#define XCALL_NO_CPU (~0u)
/** The largest nr_cpus a domain accepts. */
#define XCALL_MAX_CPUS 4096u
/** xcall_idle_wait(): no deadline, wait until a call arrives. */
#define XCALL_WAIT_FOREVER UINT64_MAX

/** The function a cross-call runs on each target (smp_call_func_t). It must
 * not throw when written in C++: an exception leaving it ends the process
 * (std::terminate), as in the C++ API. */
typedef void (*xcall_func_t)(void* info);
/** The predicate of xcall_on_each_cpu_cond_mask (smp_cond_func_t). */
typedef bool (*xcall_cond_func_t)(unsigned int cpu, void* info);

/** A domain of CPUs (xcall::domain). Opaque; xcall_domain_create/destroy. */
typedef struct xcall_domain xcall_domain_t;
/** A CPU bitmap whose bits other threads may flip while it is in use
 * (xcall::cpumask). Opaque; xcall_cpumask_create/destroy. */
typedef struct xcall_cpumask xcall_cpumask_t;
/** The attachment of the calling thread to a CPU (xcall::cpu_attachment).
 * Opaque; xcall_attach / xcall_detach. */
typedef struct xcall_attachment xcall_attachment_t;

/** The descriptor of xcall_call_function_single_async (the kernel's
 * call_single_data_t), owned by the caller: static storage, the caller's
 * stack or heap, embedded in the caller's own struct. Initialise it with
 * xcall_csd_init() before first use; never copy it, initialise it again or
 * free it while it is in flight. The bytes are private. */
typedef struct xcall_csd {
  union {
    unsigned char bytes[64];
    uint64_t align_u64;
    void* align_ptr;
  } opaque_;
} xcall_csd_t;

/** The saved soft interrupt state of xcall_local_irq_save (the kernel's
 * `unsigned long flags`). Lives on the saving thread's stack until the
 * matching restore; never copied. The bytes are private. */
typedef struct xcall_irq_flags {
  uint64_t opaque_[4];
} xcall_irq_flags_t;

/** A blocking region in progress (xcall::blocking_region), from
 * xcall_blocking_region_enter to _leave. Never copied. */
typedef struct xcall_blocking_region {
  uint64_t opaque_[6];
} xcall_blocking_region_t;

/** An event-loop wait in progress (xcall::loop_wait), from
 * xcall_loop_wait_begin to _end. Never copied. */
typedef struct xcall_loop_wait {
  uint64_t opaque_[6];
} xcall_loop_wait_t;

/* ---- errors ------------------------------------------------------------ */

/** What the last failing xcall_* function on this thread went wrong with:
 * the function, the argument at fault and the errno's name, e.g.
 * "xcall_call_function_single: cpu 7 is offline (ENXIO)", or the message of
 * the C++ exception it caught. Successful calls leave it unchanged; "" when
 * nothing failed yet on this thread. The string belongs to the thread and
 * stays valid until its next failing call. Never NULL. */
XCALL_EXPORT const char* xcall_last_error(void);

/* ---- domains ------------------------------------------------------------ */

/** How idle CPUs wait (xcall::idle_mode). */
enum xcall_idle_mode { XCALL_IDLE_POLL = 0, XCALL_IDLE_ADAPTIVE = 1, XCALL_IDLE_SLEEP = 2 };
/** How multi-CPU calls are queued (xcall::engine). */
enum xcall_engine { XCALL_ENGINE_PERCPU = 0, XCALL_ENGINE_CLASSIC = 1 };
/** What an attached host was doing in a stall report (xcall::host_activity). */
enum xcall_host_activity {
  XCALL_HOST_RUNNING = 0,
  XCALL_HOST_POLLING = 1,
  XCALL_HOST_SLEEPING = 2,
  XCALL_HOST_HANDLER = 3,
  XCALL_HOST_PARKED = 4,
  XCALL_HOST_LOOP_BLOCKED = 5
};

/** A stall report (xcall::stall_report), handed to on_stall. The strings
 * and the struct live only during the callback. */
typedef struct xcall_stall_report {
  size_t size; /**< sizeof the struct the library filled */
  bool unstuck;
  unsigned int report;
  unsigned int waiter_cpu; /**< XCALL_NO_CPU for an outside caller */
  pid_t waiter_tid;
  unsigned int target;
  int64_t waited_ns;
  xcall_func_t func;
  void* info;
  const char* func_name; /**< its symbol, or its address in hex */
  bool target_online;
  int target_activity; /**< enum xcall_host_activity */
  xcall_func_t target_func;
  const char* target_func_name;
  bool target_irqs_disabled;
  uint64_t target_queue_length;
  int target_doorbell_signal;
  bool target_blocks_signal;
  const char* line; /**< the one line the default handler prints */
  /* The target's host thread as the scheduler saw it (added after the first
   * version: check size): tid (0: none), state letter ('R', 'S', ...; 0
   * unknown), and its runnable-but-not-running time during the last
   * target_sched_window_ns of the wait (-1: unknown). */
  pid_t target_tid;
  char target_thread_state;
  int64_t target_runnable_wait_ns;
  int64_t target_sched_window_ns;
} xcall_stall_report_t;

/** Receives stall reports on the waiting thread, in the middle of its wait:
 * it must not call into the same domain with wait. */
typedef void (*xcall_stall_func_t)(const xcall_stall_report_t* report, void* arg);

/** xcall::domain_options. Fill it with xcall_domain_options_init(), then
 * change fields. `size` tells the library which version of the struct the
 * caller was compiled with; fields added later take their defaults for
 * callers that do not know them. */
typedef struct xcall_domain_options {
  size_t size;                 /**< sizeof(xcall_domain_options_t), set by _init */
  unsigned int nr_cpus;        /**< 1 .. XCALL_MAX_CPUS; 0: hardware concurrency */
  bool start_threads;          /**< true: owned CPUs, one thread each, all online */
  bool pin_threads;            /**< owned CPU i on host CPU i modulo the host's */
  int idle;                    /**< enum xcall_idle_mode */
  int64_t idle_spin_ns;        /**< adaptive spin, 0 .. 1 s */
  int engine;                  /**< enum xcall_engine */
  int64_t stall_timeout_ns;    /**< watchdog; 0 off; INT64_MAX never fires */
  xcall_stall_func_t on_stall; /**< NULL: reports go to stderr */
  void* on_stall_arg;
  int doorbell_signal; /**< 0: first free real-time signal */
  /** Wake sleeping targets of multi-CPU calls through the wake tree (the
   * default); false: the caller wakes each one itself. Added after V1: a
   * caller whose size ends before it gets the default. */
  bool wake_tree;
} xcall_domain_options_t;

/** The size of the first published xcall_domain_options_t: the smallest
 * `size` the library accepts. */
#define XCALL_DOMAIN_OPTIONS_SIZE_V1 \
  (offsetof(xcall_domain_options_t, doorbell_signal) + sizeof(int))

/** Fills *opts with the defaults of xcall::domain_options and sets
 * opts->size. -EINVAL when opts is NULL. */
XCALL_EXPORT int xcall_domain_options_init(xcall_domain_options_t* opts);

/** Builds a domain (xcall::domain's constructor) and stores it in *out.
 * opts NULL means the defaults. Errors: -EINVAL (bad option, named by
 * xcall_last_error(), or a bad XCALL_STALL_TIMEOUT_MS, or opts->size below
 * XCALL_DOMAIN_OPTIONS_SIZE_V1, or out NULL), -E2BIG (opts->size larger than
 * this library knows and the unknown tail not zero), -ENOMEM, or the errno
 * of a failed thread start. *out is untouched on failure. */
XCALL_EXPORT int xcall_domain_create(const xcall_domain_options_t* opts, xcall_domain_t** out);

/** Takes every owned CPU down (each runs what is queued for it), joins its
 * threads and frees the domain. NULL does nothing. Must not run while
 * another thread calls into the domain; a CPU still attached aborts the
 * process, naming it. */
XCALL_EXPORT void xcall_domain_destroy(xcall_domain_t* dom);

/** The domain's options as resolved (nr_cpus filled in, the environment's
 * stall timeout applied), into *out up to out->size bytes (on_stall as
 * given). -EINVAL for NULL or out->size below XCALL_DOMAIN_OPTIONS_SIZE_V1. */
XCALL_EXPORT int xcall_domain_get_options(const xcall_domain_t* dom, xcall_domain_options_t* out);

/** The number of CPUs; 0 (with xcall_last_error set) for a NULL domain. */
XCALL_EXPORT unsigned int xcall_nr_cpu_ids(const xcall_domain_t* dom);

/** The live online mask, owned by the domain (do not destroy or change
 * it): bits flip as CPUs come and go. NULL for a NULL domain. */
XCALL_EXPORT const xcall_cpumask_t* xcall_online_mask(const xcall_domain_t* dom);

/** 1 if `cpu` is online, 0 if offline, -ENXIO if out of range, -EINVAL for
 * a NULL domain. (Test `> 0`, not truth: errors are negative.) */
XCALL_EXPORT int xcall_cpu_online(const xcall_domain_t* dom, unsigned int cpu);

/** Hotplug of owned CPUs (domain::cpu_down/cpu_up): cpu_down returns once
 * the CPU is offline and has run every call queued for it. Idempotent.
 * Errors: -ENXIO (out of range), -EOPNOTSUPP (not an owned CPU), -EDEADLK
 * (inside an irq-disabled region, including a function's local copy;
 * cpu_down of the caller's own CPU or one it holds beneath a proxy), -EINVAL
 * (NULL domain). */
XCALL_EXPORT int xcall_cpu_down(xcall_domain_t* dom, unsigned int cpu);
XCALL_EXPORT int xcall_cpu_up(xcall_domain_t* dom, unsigned int cpu);

/* ---- calls ----------------------------------------------------------------
 * Every call may be made from any thread, including a function run by a
 * call. `wait`: return only after every target has run the function.
 * A thread that hosts a CPU of the domain is "this CPU": _many and
 * xcall_call_function skip it; _single to it, _any with it in the mask and
 * the on_each_cpu forms run the function locally, at once, with irqs
 * soft-disabled. Common errors: -EINVAL (NULL domain, mask or func; a mask
 * with fewer bits than nr_cpu_ids), -EDEADLK (wait inside an irq-disabled
 * region), -ENOMEM (caller storage could not be allocated; nothing queued).
 * A mask with no online target other than the caller is success. */

/** smp_call_function_single. Also -ENXIO: cpu out of range or offline. */
XCALL_EXPORT int xcall_call_function_single(xcall_domain_t* dom, unsigned int cpu,
                                            xcall_func_t func, void* info, bool wait);

/** smp_call_function_single_async: queues the caller's descriptor (see
 * xcall_csd_init) without waiting. Also -ENXIO (cpu out of range or
 * offline), -EBUSY (the descriptor is still in flight), -EINVAL (NULL csd,
 * or its func NULL). Addressed to the caller's own CPU, the function has run
 * when this returns. */
XCALL_EXPORT int xcall_call_function_single_async(xcall_domain_t* dom, unsigned int cpu,
                                                  xcall_csd_t* csd);

/** smp_call_function_many: every online CPU of the (live) mask but the
 * caller's own. */
XCALL_EXPORT int xcall_call_function_many(xcall_domain_t* dom, const xcall_cpumask_t* mask,
                                          xcall_func_t func, void* info, bool wait);

/** smp_call_function: every online CPU but the caller's own. */
XCALL_EXPORT int xcall_call_function(xcall_domain_t* dom, xcall_func_t func, void* info, bool wait);

/** smp_call_function_any: one online CPU of the mask, the caller's own
 * first. Also -ENXIO: no CPU of the mask is online. */
XCALL_EXPORT int xcall_call_function_any(xcall_domain_t* dom, const xcall_cpumask_t* mask,
                                         xcall_func_t func, void* info, bool wait);

/** on_each_cpu: every online CPU, the caller's own included (locally, after
 * the remote copies are queued). */
XCALL_EXPORT int xcall_on_each_cpu(xcall_domain_t* dom, xcall_func_t func, void* info, bool wait);

/** on_each_cpu_mask. */
XCALL_EXPORT int xcall_on_each_cpu_mask(xcall_domain_t* dom, const xcall_cpumask_t* mask,
                                        xcall_func_t func, void* info, bool wait);

/** on_each_cpu_cond_mask: as _mask, on the CPUs for which cond(cpu, info)
 * is true, evaluated on the caller before anything is queued, the caller's
 * own CPU first. A NULL cond means every CPU of the mask. */
XCALL_EXPORT int xcall_on_each_cpu_cond_mask(xcall_domain_t* dom, xcall_cond_func_t cond,
                                             xcall_func_t func, void* info, bool wait,
                                             const xcall_cpumask_t* mask);

/* ---- the caller-owned descriptor ---------------------------------------- */

/** Constructs a descriptor for func(info) in *csd (INIT_CSD). Only on a
 * descriptor that is not in flight: never initialised, or seen not in
 * flight. -EINVAL for a NULL csd (a NULL func is refused by the call). */
XCALL_EXPORT int xcall_csd_init(xcall_csd_t* csd, xcall_func_t func, void* info);

/** Changes func and info of an initialised descriptor: -EBUSY while it is
 * in flight, -EINVAL for NULL. */
XCALL_EXPORT int xcall_csd_set(xcall_csd_t* csd, xcall_func_t func, void* info);

/** 1 from the moment a call queues it until the target releases it, which
 * for an async call is *before* the function runs (so 0 means "started");
 * 0 otherwise; -EINVAL for NULL. Any thread, any time. Seeing 0 acquires what
 * the target did before it released the descriptor. */
XCALL_EXPORT int xcall_csd_in_flight(const xcall_csd_t* csd);

/* ---- cpumasks ------------------------------------------------------------
 * Bits are CPU numbers 0 .. size-1. Single-bit functions are one atomic
 * read-modify-write (release; test_and_* acq_rel; test acquire). Whole-mask
 * functions go word by word (not a snapshot of one instant). A bit index at
 * or past the size is -EINVAL; a NULL mask is -EINVAL. */

/** A mask of nbits bits, all clear, in *out. -EINVAL: nbits above INT_MAX
 * or out NULL; -ENOMEM. */
XCALL_EXPORT int xcall_cpumask_create(unsigned int nbits, xcall_cpumask_t** out);
/** A snapshot of src (word by word) in a new mask *out. */
XCALL_EXPORT int xcall_cpumask_dup(const xcall_cpumask_t* src, xcall_cpumask_t** out);
/** Frees a mask made by _create or _dup. NULL does nothing. Never the
 * online mask. */
XCALL_EXPORT void xcall_cpumask_destroy(xcall_cpumask_t* mask);

/** The number of bits (>= 0), or -EINVAL. */
XCALL_EXPORT int xcall_cpumask_size(const xcall_cpumask_t* mask);
XCALL_EXPORT int xcall_cpumask_set_cpu(xcall_cpumask_t* mask, unsigned int cpu);
XCALL_EXPORT int xcall_cpumask_clear_cpu(xcall_cpumask_t* mask, unsigned int cpu);
/** 1 set, 0 clear, or a negative errno. */
XCALL_EXPORT int xcall_cpumask_test_cpu(const xcall_cpumask_t* mask, unsigned int cpu);
/** Sets the bit; returns its old value (1/0) or a negative errno. */
XCALL_EXPORT int xcall_cpumask_test_and_set_cpu(xcall_cpumask_t* mask, unsigned int cpu);
/** Clears the bit; returns its old value (1/0) or a negative errno. */
XCALL_EXPORT int xcall_cpumask_test_and_clear_cpu(xcall_cpumask_t* mask, unsigned int cpu);
XCALL_EXPORT int xcall_cpumask_setall(xcall_cpumask_t* mask);
XCALL_EXPORT int xcall_cpumask_clear(xcall_cpumask_t* mask);
/** The number of set bits. */
XCALL_EXPORT int xcall_cpumask_weight(const xcall_cpumask_t* mask);
/** 1 if no bit is set, 0 otherwise. */
XCALL_EXPORT int xcall_cpumask_empty(const xcall_cpumask_t* mask);
/** The first set bit, or the size when none is set. */
XCALL_EXPORT int xcall_cpumask_first(const xcall_cpumask_t* mask);
/** The first set bit after n (-1 starts at bit 0), or the size. */
XCALL_EXPORT int xcall_cpumask_next(const xcall_cpumask_t* mask, int n);
/** The first bit set in both, or the smaller size when none. */
XCALL_EXPORT int xcall_cpumask_first_and(const xcall_cpumask_t* a, const xcall_cpumask_t* b);
/** The first bit after n (-1 starts at bit 0) set in both, or the smaller
 * size. */
XCALL_EXPORT int xcall_cpumask_next_and(int n, const xcall_cpumask_t* a, const xcall_cpumask_t* b);
/** dst = a & b over dst's bits (cpumask_and); allocates nothing. */
XCALL_EXPORT int xcall_cpumask_and(xcall_cpumask_t* dst, const xcall_cpumask_t* a,
                                   const xcall_cpumask_t* b);
/** dst &= src; dst's bits past src's size count as clear. */
XCALL_EXPORT int xcall_cpumask_and_with(xcall_cpumask_t* dst, const xcall_cpumask_t* src);
/** dst |= src; src's bits past dst's size are ignored. */
XCALL_EXPORT int xcall_cpumask_or_with(xcall_cpumask_t* dst, const xcall_cpumask_t* src);
/** dst = src (cpumask_copy), word by word. Masks of equal size: allocates
 * nothing, and others may use dst meanwhile. Of different sizes: dst takes
 * src's size and a new bit array (-ENOMEM possible), and nobody else may use
 * dst during the copy. */
XCALL_EXPORT int xcall_cpumask_copy(xcall_cpumask_t* dst, const xcall_cpumask_t* src);

/* ---- attached CPUs ---------------------------------------------------- */

/** How calls reach an attached CPU (xcall::delivery_mode). */
enum xcall_delivery_mode {
  XCALL_DELIVERY_POLL = 0,
  XCALL_DELIVERY_SIGNAL = 1,
  XCALL_DELIVERY_FD = 2
};

/** xcall::attach_options; xcall_attach_options_init() fills the defaults. */
typedef struct xcall_attach_options {
  size_t size;  /**< sizeof(xcall_attach_options_t), set by _init */
  int delivery; /**< enum xcall_delivery_mode */
  bool proxy;   /**< waiting callers may run the CPU's calls while the host
                     is inside a blocking region */
} xcall_attach_options_t;

#define XCALL_ATTACH_OPTIONS_SIZE_V1 (offsetof(xcall_attach_options_t, proxy) + sizeof(bool))

/** Fills the defaults (poll delivery, no proxy) and sets size. */
XCALL_EXPORT int xcall_attach_options_init(xcall_attach_options_t* how);

/** The calling thread becomes the host of `cpu`, which comes online
 * (domain::attach); the handle goes to *out. how NULL means the defaults.
 * Errors: -EOPNOTSUPP (the domain starts its own threads), -ENXIO (out of
 * range), -EINVAL (bad delivery value, how->size too small, NULL argument), -E2BIG
 * (how->size past a non-zero tail this library does not know), -EBUSY
 * (CPU already hosted, this thread already hosts a CPU, or the doorbell
 * signal has a foreign handler), -EAGAIN (no free real-time signal),
 * sigaction's errno, -ENOMEM. On failure the CPU stays free and *out is
 * untouched.
 * The attachment must end (xcall_detach) on this thread, in its own code:
 * a thread that exits still hosting the CPU aborts the process. */
XCALL_EXPORT int xcall_attach(xcall_domain_t* dom, unsigned int cpu,
                              const xcall_attach_options_t* how, xcall_attachment_t** out);

/** Runs what is queued for the CPU, takes it offline and frees the handle.
 * -EINVAL for NULL. Aborts (as cpu_attachment::detach) on a thread that
 * does not host the CPU, inside a blocking region, a loop wait, a function
 * run by a call or a stall callback. */
XCALL_EXPORT int xcall_detach(xcall_attachment_t* att);

/** The hosted CPU, or XCALL_NO_CPU for NULL. */
XCALL_EXPORT unsigned int xcall_attachment_cpu(const xcall_attachment_t* att);

/** With XCALL_DELIVERY_FD, the CPU's doorbell eventfd (owned by the
 * attachment, closed by xcall_detach); -1 for other modes and NULL. */
XCALL_EXPORT int xcall_attachment_doorbell_fd(const xcall_attachment_t* att);

/* ---- this thread's CPU context (xcall/cpu.hpp) --------------------------- */

/** The CPU this thread hosts (inside a function run by a call: the CPU the
 * call was sent to), or XCALL_NO_CPU (smp_processor_id). */
XCALL_EXPORT unsigned int xcall_this_cpu(void);

/** A safe point: a host runs every call queued for its CPU. Nothing on a
 * thread that hosts no CPU, or with irqs soft-disabled. */
XCALL_EXPORT void xcall_poll(void);

/** A host runs what is queued; if that was nothing, waits until a call
 * arrives or timeout_ns passes, and runs what arrived. Returns 1 if it ran
 * anything, 0 if not, or a negative errno. 0 returns at once after the
 * drain; XCALL_WAIT_FOREVER (and any value above INT64_MAX, which
 * saturates) waits until a call arrives. 0 at once on a thread that hosts
 * no CPU or with irqs soft-disabled. */
XCALL_EXPORT int xcall_idle_wait(uint64_t timeout_ns);

/** local_irq_save: soft-disables this CPU's "interrupts" (xcall::irq_guard)
 * until the matching xcall_local_irq_restore(flags): calls sent by other
 * threads stay queued, the last restore runs them. Nestable; restores must
 * come in reverse order, on this thread, with the same flags object (not a
 * copy). -EINVAL for NULL. */
XCALL_EXPORT int xcall_local_irq_save(xcall_irq_flags_t* flags);

/** local_irq_restore: ends the region *flags began; the last one runs what
 * arrived meanwhile. -EINVAL, with nothing changed, when flags is NULL, was
 * not saved, was already restored, is a copy, belongs to another thread, or
 * is not the innermost region of this thread still open. */
XCALL_EXPORT int xcall_local_irq_restore(xcall_irq_flags_t* flags);

/** irqs_disabled(): true inside a save/restore region, an irq_guard, or a
 * function's local copy. */
XCALL_EXPORT bool xcall_irqs_disabled(void);

/** xcall::blocking_region: the host parks in something that does not touch
 * its CPU's state (a blocking system call). Enter runs what is queued;
 * inside, xcall_this_cpu() is XCALL_NO_CPU and, with proxy, waiting callers
 * run the CPU's calls; leave runs what arrived. Changes nothing without
 * proxy, on a non-host or with irqs disabled. The same rules as
 * xcall_local_irq_restore apply to leave (-EINVAL for misuse). */
XCALL_EXPORT int xcall_blocking_region_enter(xcall_blocking_region_t* region);
XCALL_EXPORT int xcall_blocking_region_leave(xcall_blocking_region_t* region);

/** xcall::loop_wait, around the kernel wait of an event loop on a CPU
 * attached with XCALL_DELIVERY_FD. Begin returns 1 when the thread may block
 * (wait with its timeout), 0 when calls were already queued (wait with a
 * zero timeout), or a negative errno. End reads the doorbell fd if it was
 * written and runs what is queued (-EINVAL for misuse, as irq_restore). */
XCALL_EXPORT int xcall_loop_wait_begin(xcall_loop_wait_t* wait);
XCALL_EXPORT int xcall_loop_wait_end(xcall_loop_wait_t* wait);

/* ---- statistics ------------------------------------------------------- */

/** Per-CPU counters (xcall::cpu_stats). */
typedef struct xcall_cpu_stats {
  size_t size; /**< written by the library: the bytes of this element it filled */
  unsigned int cpu;
  bool online;
  uint64_t calls_run;
  uint64_t doorbells_rung;
  uint64_t doorbells_saved;
  uint64_t sleeps;
  uint64_t drained_on_down;
  uint64_t stalls_reported;
  uint64_t signals_sent;
  uint64_t signals_resent;
  uint64_t signal_runs;
  uint64_t signals_deferred;
  uint64_t proxy_runs;
  uint64_t doorbell_fd_writes;
  uint64_t wakes_relayed;
} xcall_cpu_stats_t;

#define XCALL_CPU_STATS_SIZE_V1 (offsetof(xcall_cpu_stats_t, wakes_relayed) + sizeof(uint64_t))

/** A snapshot of the counters of CPUs 0 .. count-1 (at most nr_cpu_ids)
 * into out[], whose elements are elem_size bytes apart: pass
 * sizeof(xcall_cpu_stats_t). Returns nr_cpu_ids (which may exceed count),
 * or -EINVAL (NULL domain, out NULL with count > 0, elem_size below
 * XCALL_CPU_STATS_SIZE_V1), -ENOMEM. Any thread, any time; each counter is
 * read once, relaxed. */
XCALL_EXPORT int xcall_domain_stats(const xcall_domain_t* dom, xcall_cpu_stats_t* out, size_t count,
                                    size_t elem_size);

/** xcall::format_stats: the counters as /proc/interrupts rows, in blocks of
 * `columns` CPUs, into buf (always NUL-terminated when len > 0). Returns the
 * length of the whole text (snprintf's convention: >= len means it was cut),
 * or a negative errno. */
XCALL_EXPORT ssize_t xcall_format_stats(const xcall_cpu_stats_t* stats, size_t count,
                                        size_t elem_size, unsigned int columns, char* buf,
                                        size_t len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#ifdef __cplusplus
static_assert(sizeof(xcall_csd_t) == 64, "xcall_csd_t is part of the ABI");
#else
_Static_assert(sizeof(xcall_csd_t) == 64, "xcall_csd_t is part of the ABI");
#endif

#endif /* XCALL_XCALL_H */
