/* examples/c — xcall from C: a tour of xcall/xcall.h in one small program.
 *
 *   1. a domain of 4 owned CPUs and a live mask of the CPUs that "use" a
 *      shared object: a shootdown with call_function_many(wait) reaches each
 *      of them while another thread keeps flipping bits;
 *   2. one caller-owned descriptor per CPU, embedded in the caller's own
 *      per-CPU struct, for a stream of async calls;
 *   3. a domain whose CPU is an application thread: it attaches, polls at
 *      its safe points, and soft-disables its "interrupts" around a
 *      critical section;
 *   4. per-CPU counters, printed like /proc/interrupts.
 *
 * Every xcall_* function returns 0 or a negative errno, and
 * xcall_last_error() says what went wrong: die() shows both. The program
 * exits 0 only if every check passes (CTest: example.c_example). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xcall/xcall.h>

static void die(const char* what, int rc) {
  fprintf(stderr, "c_example: %s failed: %d (%s)\n", what, rc, xcall_last_error());
  exit(1);
}
#define TRY(call)                 \
  do {                            \
    const int rc_ = (call);       \
    if (rc_ < 0) die(#call, rc_); \
  } while (0)

enum { kCpus = 4, kShootdowns = 1000, kAsyncPerCpu = 100 };

/* ---- 1. a shootdown over a live mask ------------------------------------ */

static atomic_uint cached[kCpus]; /* what each CPU has cached */
static xcall_cpumask_t* active;   /* CPUs that use the mapping */
static atomic_int stop_flipping;

static void invalidate(void* info) {
  const unsigned gen = *(const unsigned*)info;
  atomic_store(&cached[xcall_this_cpu()], gen);
}

/* CPUs 2 and 3 come and go (lazy TLB); CPUs 0 and 1 stay in the mask. */
static void* flipper(void* arg) {
  (void)arg;
  while (!atomic_load(&stop_flipping)) {
    for (unsigned cpu = 2; cpu < kCpus; ++cpu) {
      TRY(xcall_cpumask_clear_cpu(active, cpu));
      sched_yield();
      TRY(xcall_cpumask_set_cpu(active, cpu));
    }
  }
  return NULL;
}

static void shootdowns(xcall_domain_t* dom) {
  TRY(xcall_cpumask_create(xcall_nr_cpu_ids(dom), &active));
  TRY(xcall_cpumask_setall(active));
  pthread_t t;
  if (pthread_create(&t, NULL, flipper, NULL) != 0) die("pthread_create", -1);
  for (unsigned i = 1; i <= kShootdowns; ++i) {
    unsigned gen = i;
    TRY(xcall_call_function_many(dom, active, invalidate, &gen, true));
    /* CPUs 0 and 1 were in the mask for the whole call: they ran it. */
    if (atomic_load(&cached[0]) != gen || atomic_load(&cached[1]) != gen) {
      fprintf(stderr, "c_example: a CPU missed shootdown %u\n", gen);
      exit(1);
    }
  }
  atomic_store(&stop_flipping, 1);
  pthread_join(t, NULL);
  printf("1. %d shootdowns over a live mask: every stable CPU ran each one\n", kShootdowns);
  xcall_cpumask_destroy(active);
}

/* ---- 2. caller-owned descriptors ------------------------------------------- */

struct percpu_work {
  unsigned cpu;
  atomic_int runs;
  xcall_csd_t csd; /* ours: not copied, not re-initialised while in flight */
};

static void work(void* info) {
  struct percpu_work* w = info;
  if (xcall_this_cpu() != w->cpu) exit(1);
  atomic_fetch_add(&w->runs, 1);
}

static void async_calls(xcall_domain_t* dom) {
  static struct percpu_work works[kCpus];
  for (unsigned cpu = 0; cpu < kCpus; ++cpu) {
    works[cpu].cpu = cpu;
    TRY(xcall_csd_init(&works[cpu].csd, work, &works[cpu]));
  }
  for (int round = 0; round < kAsyncPerCpu; ++round) {
    for (unsigned cpu = 0; cpu < kCpus; ++cpu) {
      /* -EBUSY while the previous call still holds it: wait for the target
       * to release it (it does so before running the function). */
      int rc;
      while ((rc = xcall_call_function_single_async(dom, cpu, &works[cpu].csd)) == -EBUSY) {
        sched_yield();
      }
      TRY(rc);
    }
  }
  for (unsigned cpu = 0; cpu < kCpus; ++cpu) {
    while (atomic_load(&works[cpu].runs) < kAsyncPerCpu) sched_yield();
  }
  printf("2. %d async calls per CPU through caller-owned descriptors\n", kAsyncPerCpu);
}

/* ---- 3. an attached application thread -------------------------------------- */

static atomic_int app_ready, app_stop, app_calls;

static void hello(void* info) {
  (void)info;
  atomic_fetch_add(&app_calls, 1);
}

static void* app_thread(void* arg) {
  xcall_domain_t* app = arg;
  xcall_attachment_t* cpu = NULL;
  TRY(xcall_attach(app, 0, NULL, &cpu)); /* this thread hosts CPU 0, now online */
  atomic_store(&app_ready, 1);
  while (!atomic_load(&app_stop)) {
    /* A critical section no cross-call may interrupt: calls wait until the
     * restore, which runs them. */
    xcall_irq_flags_t flags;
    TRY(xcall_local_irq_save(&flags));
    /* ... touch this CPU's private state ... */
    TRY(xcall_local_irq_restore(&flags));
    /* A safe point: wait up to 1 ms for calls and run them. */
    TRY(xcall_idle_wait(1000000));
  }
  TRY(xcall_detach(cpu)); /* runs what is queued, goes offline */
  return NULL;
}

static void attached(void) {
  xcall_domain_options_t opts;
  TRY(xcall_domain_options_init(&opts));
  opts.nr_cpus = 1;
  opts.start_threads = false;
  xcall_domain_t* app = NULL;
  TRY(xcall_domain_create(&opts, &app));
  /* Nobody hosts CPU 0 yet: a call to it fails with -ENXIO. */
  const int rc = xcall_call_function_single(app, 0, hello, NULL, true);
  printf("3. before attach: %d, \"%s\"\n", rc, xcall_last_error());
  if (rc != -ENXIO) exit(1);
  pthread_t t;
  if (pthread_create(&t, NULL, app_thread, app) != 0) die("pthread_create", -1);
  while (!atomic_load(&app_ready)) sched_yield();
  for (int i = 0; i < 10; ++i) TRY(xcall_call_function_single(app, 0, hello, NULL, true));
  atomic_store(&app_stop, 1);
  pthread_join(t, NULL);
  printf("   after attach: %d calls ran on the application thread\n", atomic_load(&app_calls));
  if (atomic_load(&app_calls) != 10) exit(1);
  xcall_domain_destroy(app);
}

/* ---- 4. counters --------------------------------------------------------------- */

static void counters(xcall_domain_t* dom) {
  xcall_cpu_stats_t stats[kCpus];
  TRY(xcall_domain_stats(dom, stats, kCpus, sizeof(stats[0])));
  char text[4096];
  TRY((int)xcall_format_stats(stats, kCpus, sizeof(stats[0]), 16, text, sizeof(text)));
  printf("4. counters:\n%s", text);
}

int main(void) {
  xcall_domain_options_t opts;
  TRY(xcall_domain_options_init(&opts));
  opts.nr_cpus = kCpus;
  xcall_domain_t* dom = NULL;
  TRY(xcall_domain_create(&opts, &dom));
  shootdowns(dom);
  async_calls(dom);
  attached();
  counters(dom);
  xcall_domain_destroy(dom);
  return 0;
}
