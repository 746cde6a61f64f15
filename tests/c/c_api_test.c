/* tests/c/c_api_test.c — the C API (xcall/xcall.h), from a program written
 * and compiled as C11.
 *
 *   c_api_test <scenario>     runs one scenario; CTest registers each one
 *   c_api_test --list         prints the scenarios
 *
 * Every check fails the scenario at once, naming file:line, the expression
 * and xcall_last_error(). An expected failure is checked for its exact
 * negative errno *and* for a message that names what was wrong. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xcall/xcall.h>

/* ---- harness ------------------------------------------------------------- */

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: \"%s\")\n", __FILE__, __LINE__, #cond, \
              xcall_last_error());                                                                 \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* The call returns -err and xcall_last_error() contains `needle` and the
 * errno's name in parentheses. */
#define CHECK_ERR(call, err, needle)                                                          \
  do {                                                                                        \
    const long long r_ = (long long)(call);                                                   \
    const char* e_ = xcall_last_error();                                                      \
    if (r_ != -(long long)(err) || strstr(e_, (needle)) == NULL ||                            \
        strstr(e_, "(" #err ")") == NULL) {                                                   \
      fprintf(stderr,                                                                         \
              "%s:%d: %s returned %lld, expected -%s (%d) with \"%s\"; last error: \"%s\"\n", \
              __FILE__, __LINE__, #call, r_, #err, (int)(err), (needle), e_);                 \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

#define CHECK_OK(call)                                                                             \
  do {                                                                                             \
    const long long r_ = (long long)(call);                                                        \
    if (r_ != 0) {                                                                                 \
      fprintf(stderr, "%s:%d: %s returned %lld (last error: \"%s\")\n", __FILE__, __LINE__, #call, \
              r_, xcall_last_error());                                                             \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Spins (yielding) until *v >= want, at most 10 s. */
static bool wait_for(atomic_int* v, int want) {
  const double end = now_s() + 10.0;
  while (atomic_load(v) < want) {
    if (now_s() > end) return false;
    sched_yield();
  }
  return true;
}

static xcall_domain_t* make_domain(unsigned nr, bool start_threads, int engine) {
  xcall_domain_options_t o;
  CHECK_OK(xcall_domain_options_init(&o));
  o.nr_cpus = nr;
  o.start_threads = start_threads;
  o.engine = engine;
  xcall_domain_t* d = NULL;
  CHECK_OK(xcall_domain_create(&o, &d));
  CHECK(d != NULL);
  return d;
}

static xcall_cpumask_t* make_mask(unsigned nbits) {
  xcall_cpumask_t* m = NULL;
  CHECK_OK(xcall_cpumask_create(nbits, &m));
  return m;
}

/* ---- functions the calls run ----------------------------------------------- */

#define MAX_CPUS 8
static atomic_int ran[MAX_CPUS];
static atomic_int cond_calls;

static void reset_ran(void) {
  for (int i = 0; i < MAX_CPUS; ++i) atomic_store(&ran[i], 0);
  atomic_store(&cond_calls, 0);
}

/* Counts a run on the CPU it runs on; info, when set, is bumped too. */
static void count_fn(void* info) {
  const unsigned cpu = xcall_this_cpu();
  CHECK(cpu < MAX_CPUS);
  atomic_fetch_add(&ran[cpu], 1);
  if (info != NULL) atomic_fetch_add((atomic_int*)info, 1);
}

static bool odd_cond(unsigned cpu, void* info) {
  (void)info;
  atomic_fetch_add(&cond_calls, 1);
  return cpu % 2 == 1;
}

static void expect_ran(int c0, int c1, int c2, int c3) {
  CHECK(atomic_load(&ran[0]) == c0);
  CHECK(atomic_load(&ran[1]) == c1);
  CHECK(atomic_load(&ran[2]) == c2);
  CHECK(atomic_load(&ran[3]) == c3);
}

/* ---- an attached host thread -------------------------------------------------- */

struct host {
  xcall_domain_t* dom;
  unsigned cpu;
  xcall_attach_options_t how;
  atomic_int attached; /* 1 once attached (or attach failed: rc != 0) */
  atomic_int polling;  /* host polls while 1 */
  atomic_int stop;
  int rc;
  pthread_t thread;
};

static void* host_main(void* arg) {
  struct host* h = arg;
  xcall_attachment_t* att = NULL;
  h->rc = xcall_attach(h->dom, h->cpu, &h->how, &att);
  atomic_store(&h->attached, 1);
  if (h->rc != 0) return NULL;
  CHECK(xcall_this_cpu() == h->cpu);
  while (!atomic_load(&h->stop)) {
    if (atomic_load(&h->polling)) xcall_poll();
    sched_yield();
  }
  CHECK_OK(xcall_detach(att));
  CHECK(xcall_this_cpu() == XCALL_NO_CPU);
  return NULL;
}

static void host_start(struct host* h, xcall_domain_t* dom, unsigned cpu, int delivery,
                       bool polling) {
  memset(h, 0, sizeof(*h));
  h->dom = dom;
  h->cpu = cpu;
  CHECK_OK(xcall_attach_options_init(&h->how));
  h->how.delivery = delivery;
  atomic_store(&h->polling, polling ? 1 : 0);
  CHECK(pthread_create(&h->thread, NULL, host_main, h) == 0);
  CHECK(wait_for(&h->attached, 1));
  CHECK_OK(h->rc);
}

static void host_stop(struct host* h) {
  atomic_store(&h->stop, 1);
  CHECK(pthread_join(h->thread, NULL) == 0);
}

/* ---- scenarios ------------------------------------------------------------------ */

static void* read_last_error(void* arg) {
  *(const char**)arg = xcall_last_error();
  return NULL;
}

static void scenario_last_error(void) {
  CHECK(xcall_last_error() != NULL);
  CHECK(strcmp(xcall_last_error(), "") == 0);
  CHECK_ERR(xcall_cpumask_create(8, NULL), EINVAL, "xcall_cpumask_create: out is NULL");
  /* A success leaves it alone. */
  xcall_cpumask_t* m = make_mask(8);
  CHECK(strstr(xcall_last_error(), "xcall_cpumask_create: out is NULL") != NULL);
  /* Per thread: another thread has seen no failure. */
  const char* other = NULL;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, read_last_error, &other) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(other != NULL && strcmp(other, "") == 0);
  xcall_cpumask_destroy(m);
}

static void scenario_options(void) {
  CHECK_ERR(xcall_domain_options_init(NULL), EINVAL, "opts is NULL");
  xcall_domain_options_t o;
  memset(&o, 0xab, sizeof(o));
  CHECK_OK(xcall_domain_options_init(&o));
  CHECK(o.size == sizeof(o));
  CHECK(o.nr_cpus == 0);
  CHECK(o.start_threads == true);
  CHECK(o.pin_threads == false);
  CHECK(o.idle == XCALL_IDLE_ADAPTIVE);
  CHECK(o.idle_spin_ns == 50000);
  CHECK(o.engine == XCALL_ENGINE_PERCPU);
  CHECK(o.stall_timeout_ns == 5000000000LL);
  CHECK(o.on_stall == NULL && o.on_stall_arg == NULL);
  CHECK(o.doorbell_signal == 0);
  CHECK(XCALL_DOMAIN_OPTIONS_SIZE_V1 <= sizeof(o));

  /* NULL options: the defaults, nr_cpus resolved. */
  unsetenv("XCALL_STALL_TIMEOUT_MS");
  xcall_domain_t* d = NULL;
  CHECK_OK(xcall_domain_create(NULL, &d));
  xcall_domain_options_t got;
  got.size = sizeof(got);
  CHECK_OK(xcall_domain_get_options(d, &got));
  CHECK(got.size == sizeof(got));
  CHECK(got.nr_cpus >= 1 && got.nr_cpus == xcall_nr_cpu_ids(d));
  CHECK(got.start_threads && got.stall_timeout_ns == 5000000000LL);
  CHECK_ERR(xcall_domain_get_options(NULL, &got), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_domain_get_options(d, NULL), EINVAL, "out is NULL");
  got.size = 8;
  CHECK_ERR(xcall_domain_get_options(d, &got), EINVAL, "out->size 8 is below");
  got.size = sizeof(got);
  xcall_domain_destroy(d);
  xcall_domain_destroy(NULL); /* does nothing */

  /* Each bad option fails with EINVAL naming it, and *out stays untouched. */
  xcall_domain_t* const sentinel = (xcall_domain_t*)&o;
#define BAD_OPTION(stmt, needle)                                        \
  do {                                                                  \
    xcall_domain_options_init(&o);                                      \
    o.start_threads = false;                                            \
    stmt;                                                               \
    d = sentinel;                                                       \
    CHECK_ERR(xcall_domain_create(&o, &d), EINVAL, needle);             \
    CHECK(strstr(xcall_last_error(), "xcall_domain_create: ") != NULL); \
    CHECK(d == sentinel);                                               \
  } while (0)
  BAD_OPTION(o.nr_cpus = 5000, "nr_cpus: 5000 is above the maximum of 4096");
  BAD_OPTION(o.idle = 7, "idle: not a valid idle_mode");
  BAD_OPTION(o.idle_spin_ns = 2000000000LL, "idle_spin");
  BAD_OPTION(o.idle_spin_ns = -1, "idle_spin");
  BAD_OPTION(o.stall_timeout_ns = -5, "stall_timeout");
  BAD_OPTION(o.engine = 9, "engine_kind");
  BAD_OPTION(o.doorbell_signal = 1, "doorbell_signal");
  BAD_OPTION(o.size = 0, "opts->size 0 is below the first version's");
  BAD_OPTION(o.size = XCALL_DOMAIN_OPTIONS_SIZE_V1 - 1, "opts->size");
#undef BAD_OPTION
  xcall_domain_options_init(&o);
  CHECK_ERR(xcall_domain_create(&o, NULL), EINVAL, "out is NULL");

  /* A caller built against a later, larger struct: a zero tail is fine,
   * anything else there is E2BIG. */
  struct {
    xcall_domain_options_t o;
    uint64_t later_field;
  } big;
  memset(&big, 0, sizeof(big));
  xcall_domain_options_init(&big.o);
  big.o.size = sizeof(big);
  big.o.nr_cpus = 2;
  big.o.start_threads = false;
  CHECK_OK(xcall_domain_create(&big.o, &d));
  CHECK(xcall_nr_cpu_ids(d) == 2);
  xcall_domain_destroy(d);
  big.later_field = 1;
  d = sentinel;
  CHECK_ERR(xcall_domain_create(&big.o, &d), E2BIG,
            "is not zero and this library does not know it");
  CHECK(d == sentinel);

  /* The environment's stall timeout: applied, or named when bad. */
  xcall_domain_options_init(&o);
  o.nr_cpus = 1;
  o.start_threads = false;
  setenv("XCALL_STALL_TIMEOUT_MS", "soon", 1);
  CHECK_ERR(xcall_domain_create(&o, &d), EINVAL, "XCALL_STALL_TIMEOUT_MS=soon");
  setenv("XCALL_STALL_TIMEOUT_MS", "250", 1);
  CHECK_OK(xcall_domain_create(&o, &d));
  CHECK_OK(xcall_domain_get_options(d, &got));
  CHECK(got.stall_timeout_ns == 250000000LL);
  xcall_domain_destroy(d);
  unsetenv("XCALL_STALL_TIMEOUT_MS");

  /* Queries on a NULL domain. */
  CHECK(xcall_nr_cpu_ids(NULL) == 0);
  CHECK(strstr(xcall_last_error(), "xcall_nr_cpu_ids: dom is NULL (EINVAL)") != NULL);
  CHECK(xcall_online_mask(NULL) == NULL);
  CHECK(strstr(xcall_last_error(), "xcall_online_mask: dom is NULL") != NULL);
  CHECK_ERR(xcall_cpu_online(NULL, 0), EINVAL, "dom is NULL");
}

static void scenario_cpumask(void) {
  xcall_cpumask_t* m = make_mask(100);
  CHECK(xcall_cpumask_size(m) == 100);
  CHECK(xcall_cpumask_empty(m) == 1);
  CHECK(xcall_cpumask_weight(m) == 0);
  CHECK(xcall_cpumask_first(m) == 100);
  CHECK_OK(xcall_cpumask_set_cpu(m, 3));
  CHECK_OK(xcall_cpumask_set_cpu(m, 64));
  CHECK_OK(xcall_cpumask_set_cpu(m, 99));
  CHECK(xcall_cpumask_test_cpu(m, 3) == 1);
  CHECK(xcall_cpumask_test_cpu(m, 4) == 0);
  CHECK(xcall_cpumask_empty(m) == 0);
  CHECK(xcall_cpumask_weight(m) == 3);
  CHECK(xcall_cpumask_first(m) == 3);
  CHECK(xcall_cpumask_next(m, -1) == 3);
  CHECK(xcall_cpumask_next(m, 3) == 64);
  CHECK(xcall_cpumask_next(m, 64) == 99);
  CHECK(xcall_cpumask_next(m, 99) == 100);
  CHECK_ERR(xcall_cpumask_next(m, -2), EINVAL, "xcall_cpumask_next: n -2 is below -1");
  CHECK_OK(xcall_cpumask_clear_cpu(m, 64));
  CHECK(xcall_cpumask_test_cpu(m, 64) == 0);
  CHECK(xcall_cpumask_test_and_set_cpu(m, 5) == 0);
  CHECK(xcall_cpumask_test_and_set_cpu(m, 5) == 1);
  CHECK(xcall_cpumask_test_and_clear_cpu(m, 5) == 1);
  CHECK(xcall_cpumask_test_and_clear_cpu(m, 5) == 0);

  /* A bit past the end: EINVAL, the C++ message naming the operation. */
  CHECK_ERR(xcall_cpumask_set_cpu(m, 100), EINVAL,
            "xcall_cpumask_set_cpu: xcall::cpumask::set: cpu 100 >= size 100");
  CHECK_ERR(xcall_cpumask_clear_cpu(m, 100), EINVAL, "cpu 100 >= size 100");
  CHECK_ERR(xcall_cpumask_test_cpu(m, 1000), EINVAL, "cpu 1000 >= size 100");
  CHECK_ERR(xcall_cpumask_test_and_set_cpu(m, 100), EINVAL, "cpu 100 >= size 100");
  CHECK_ERR(xcall_cpumask_test_and_clear_cpu(m, XCALL_NO_CPU), EINVAL, ">= size 100");
  CHECK(xcall_cpumask_weight(m) == 2); /* nothing changed */

  CHECK_OK(xcall_cpumask_setall(m));
  CHECK(xcall_cpumask_weight(m) == 100);
  CHECK_OK(xcall_cpumask_clear(m));
  CHECK(xcall_cpumask_weight(m) == 0);

  /* dup is a snapshot; copy between equal and different sizes. */
  CHECK_OK(xcall_cpumask_set_cpu(m, 7));
  xcall_cpumask_t* d = NULL;
  CHECK_OK(xcall_cpumask_dup(m, &d));
  CHECK(xcall_cpumask_size(d) == 100 && xcall_cpumask_test_cpu(d, 7) == 1);
  CHECK_OK(xcall_cpumask_set_cpu(m, 8));
  CHECK(xcall_cpumask_test_cpu(d, 8) == 0);
  CHECK_OK(xcall_cpumask_copy(d, m));
  CHECK(xcall_cpumask_test_cpu(d, 8) == 1 && xcall_cpumask_weight(d) == 2);
  xcall_cpumask_t* small = make_mask(10);
  CHECK_OK(xcall_cpumask_set_cpu(small, 9));
  CHECK_OK(xcall_cpumask_copy(d, small));
  CHECK(xcall_cpumask_size(d) == 10 && xcall_cpumask_weight(d) == 1);

  /* and / and_with / or_with / first_and / next_and. */
  xcall_cpumask_t* a = make_mask(70);
  xcall_cpumask_t* b = make_mask(70);
  xcall_cpumask_t* r = make_mask(70);
  CHECK_OK(xcall_cpumask_set_cpu(a, 1));
  CHECK_OK(xcall_cpumask_set_cpu(a, 65));
  CHECK_OK(xcall_cpumask_set_cpu(a, 66));
  CHECK_OK(xcall_cpumask_set_cpu(b, 2));
  CHECK_OK(xcall_cpumask_set_cpu(b, 65));
  CHECK_OK(xcall_cpumask_set_cpu(b, 66));
  CHECK(xcall_cpumask_first_and(a, b) == 65);
  CHECK(xcall_cpumask_next_and(-1, a, b) == 65);
  CHECK(xcall_cpumask_next_and(65, a, b) == 66);
  CHECK(xcall_cpumask_next_and(66, a, b) == 70);
  CHECK(xcall_cpumask_first_and(a, small) == 10); /* none: the smaller size */
  CHECK_ERR(xcall_cpumask_next_and(-3, a, b), EINVAL, "n -3 is below -1");
  CHECK_OK(xcall_cpumask_set_cpu(r, 0));
  CHECK_OK(xcall_cpumask_and(r, a, b));
  CHECK(xcall_cpumask_weight(r) == 2 && xcall_cpumask_test_cpu(r, 65) == 1);
  CHECK_OK(xcall_cpumask_or_with(r, a));
  CHECK(xcall_cpumask_weight(r) == 3 && xcall_cpumask_test_cpu(r, 1) == 1);
  CHECK_OK(xcall_cpumask_and_with(r, b));
  CHECK(xcall_cpumask_weight(r) == 2 && xcall_cpumask_test_cpu(r, 1) == 0);
  CHECK_OK(xcall_cpumask_and_with(r, small)); /* bits past small's 10 count as clear */
  CHECK(xcall_cpumask_weight(r) == 0);
  CHECK_OK(xcall_cpumask_or_with(small, a)); /* a's bits past 10 are ignored */
  CHECK(xcall_cpumask_weight(small) == 2 && xcall_cpumask_test_cpu(small, 1) == 1);

  /* Creation limits and NULL handles. */
  xcall_cpumask_t* const sentinel = a;
  xcall_cpumask_t* out = sentinel;
  CHECK_ERR(xcall_cpumask_create(2147483648u, &out), EINVAL, "nbits 2147483648 is above INT_MAX");
  CHECK(out == sentinel);
  CHECK_ERR(xcall_cpumask_create(8, NULL), EINVAL, "out is NULL");
  CHECK_ERR(xcall_cpumask_dup(NULL, &out), EINVAL, "xcall_cpumask_dup: src is NULL");
  CHECK_ERR(xcall_cpumask_dup(a, NULL), EINVAL, "out is NULL");
  CHECK_ERR(xcall_cpumask_size(NULL), EINVAL, "xcall_cpumask_size: mask is NULL");
  CHECK_ERR(xcall_cpumask_set_cpu(NULL, 0), EINVAL, "xcall_cpumask_set_cpu: mask is NULL");
  CHECK_ERR(xcall_cpumask_clear_cpu(NULL, 0), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_test_cpu(NULL, 0), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_test_and_set_cpu(NULL, 0), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_test_and_clear_cpu(NULL, 0), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_setall(NULL), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_clear(NULL), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_weight(NULL), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_empty(NULL), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_first(NULL), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_next(NULL, 0), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_cpumask_first_and(NULL, b), EINVAL, "a is NULL");
  CHECK_ERR(xcall_cpumask_next_and(0, a, NULL), EINVAL, "b is NULL");
  CHECK_ERR(xcall_cpumask_and(NULL, a, b), EINVAL, "dst is NULL");
  CHECK_ERR(xcall_cpumask_and(r, NULL, b), EINVAL, "a is NULL");
  CHECK_ERR(xcall_cpumask_and_with(r, NULL), EINVAL, "src is NULL");
  CHECK_ERR(xcall_cpumask_or_with(NULL, a), EINVAL, "dst is NULL");
  CHECK_ERR(xcall_cpumask_copy(r, NULL), EINVAL, "src is NULL");
  xcall_cpumask_destroy(NULL);

  /* A zero-bit mask is a mask. */
  xcall_cpumask_t* z = make_mask(0);
  CHECK(xcall_cpumask_size(z) == 0 && xcall_cpumask_first(z) == 0);
  CHECK_ERR(xcall_cpumask_set_cpu(z, 0), EINVAL, "cpu 0 >= size 0");

  xcall_cpumask_destroy(z);
  xcall_cpumask_destroy(a);
  xcall_cpumask_destroy(b);
  xcall_cpumask_destroy(r);
  xcall_cpumask_destroy(small);
  xcall_cpumask_destroy(d);
  xcall_cpumask_destroy(m);
}

/* A function run on CPU 0 by an outside caller: its waiting call from a
 * remote copy works; from the local copy of its on_each_cpu it is EDEADLK. */
static xcall_domain_t* nested_dom;
static atomic_int nested_remote_rc = 1;
static atomic_int nested_local_rc = 1;
static atomic_int nested_local_irqs = 0;

static void nested_local(void* info) {
  (void)info;
  if (xcall_this_cpu() != 0) return; /* only the local copy on CPU 0 */
  atomic_store(&nested_local_irqs, xcall_irqs_disabled() ? 1 : 0);
  atomic_store(&nested_local_rc, xcall_call_function_single(nested_dom, 1, count_fn, NULL, true));
}

static void nested_remote(void* info) {
  (void)info;
  CHECK(xcall_this_cpu() == 0 && !xcall_irqs_disabled());
  atomic_store(&nested_remote_rc, xcall_call_function_single(nested_dom, 1, count_fn, NULL, true));
  CHECK_OK(xcall_on_each_cpu(nested_dom, nested_local, NULL, true));
}

static void scenario_calls(int engine) {
  xcall_domain_t* d = make_domain(4, true, engine);
  CHECK(xcall_nr_cpu_ids(d) == 4);
  const xcall_cpumask_t* online = xcall_online_mask(d);
  CHECK(online != NULL && xcall_cpumask_weight(online) == 4 && xcall_cpumask_size(online) == 4);
  atomic_int info = 0;

  reset_ran();
  CHECK_OK(xcall_call_function_single(d, 2, count_fn, &info, true));
  expect_ran(0, 0, 1, 0);
  CHECK(atomic_load(&info) == 1);

  reset_ran();
  CHECK_OK(xcall_call_function_single(d, 3, count_fn, NULL, false));
  CHECK(wait_for(&ran[3], 1));
  expect_ran(0, 0, 0, 1);

  reset_ran();
  CHECK_OK(xcall_call_function(d, count_fn, NULL, true));
  expect_ran(1, 1, 1, 1);

  xcall_cpumask_t* m = make_mask(4);
  CHECK_OK(xcall_cpumask_set_cpu(m, 1));
  CHECK_OK(xcall_cpumask_set_cpu(m, 3));
  reset_ran();
  CHECK_OK(xcall_call_function_many(d, m, count_fn, NULL, true));
  expect_ran(0, 1, 0, 1);

  reset_ran();
  CHECK_OK(xcall_call_function_many(d, m, count_fn, NULL, false));
  CHECK(wait_for(&ran[1], 1) && wait_for(&ran[3], 1));

  reset_ran();
  CHECK_OK(xcall_on_each_cpu(d, count_fn, NULL, true));
  expect_ran(1, 1, 1, 1);

  reset_ran();
  CHECK_OK(xcall_on_each_cpu_mask(d, m, count_fn, NULL, true));
  expect_ran(0, 1, 0, 1);

  /* cond: evaluated once per online CPU of the mask; NULL means all. */
  xcall_cpumask_t* all = make_mask(4);
  CHECK_OK(xcall_cpumask_setall(all));
  reset_ran();
  CHECK_OK(xcall_on_each_cpu_cond_mask(d, odd_cond, count_fn, NULL, true, all));
  expect_ran(0, 1, 0, 1);
  CHECK(atomic_load(&cond_calls) == 4);
  reset_ran();
  CHECK_OK(xcall_on_each_cpu_cond_mask(d, NULL, count_fn, NULL, true, m));
  expect_ran(0, 1, 0, 1);

  /* any: one CPU of the mask; none online is ENXIO. */
  xcall_cpumask_t* two = make_mask(4);
  CHECK_OK(xcall_cpumask_set_cpu(two, 2));
  reset_ran();
  CHECK_OK(xcall_call_function_any(d, two, count_fn, NULL, true));
  expect_ran(0, 0, 1, 0);
  xcall_cpumask_t* none = make_mask(4);
  CHECK_ERR(xcall_call_function_any(d, none, count_fn, NULL, true), ENXIO,
            "xcall_call_function_any: no CPU of the mask is online");
  CHECK_OK(xcall_call_function_many(d, none, count_fn, NULL, true)); /* empty is fine */

  /* Errors. */
  CHECK_ERR(xcall_call_function_single(NULL, 0, count_fn, NULL, true), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_call_function_single(d, 0, NULL, NULL, true), EINVAL,
            "xcall_call_function_single: func is NULL");
  CHECK_ERR(xcall_call_function_single(d, 4, count_fn, NULL, true), ENXIO,
            "cpu 4 is out of range (nr_cpu_ids 4)");
  CHECK_ERR(xcall_call_function_single(d, XCALL_NO_CPU, count_fn, NULL, false), ENXIO,
            "is out of range");
  CHECK_ERR(xcall_call_function_many(d, NULL, count_fn, NULL, true), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_call_function_many(d, m, NULL, NULL, true), EINVAL, "func is NULL");
  CHECK_ERR(xcall_call_function_many(NULL, m, count_fn, NULL, true), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_call_function(d, NULL, NULL, true), EINVAL, "xcall_call_function: func is NULL");
  CHECK_ERR(xcall_call_function(NULL, count_fn, NULL, true), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_call_function_any(d, NULL, count_fn, NULL, true), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_call_function_any(NULL, m, count_fn, NULL, true), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_call_function_any(d, m, NULL, NULL, true), EINVAL, "func is NULL");
  CHECK_ERR(xcall_on_each_cpu(d, NULL, NULL, true), EINVAL, "func is NULL");
  CHECK_ERR(xcall_on_each_cpu(NULL, count_fn, NULL, true), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_on_each_cpu_mask(d, NULL, count_fn, NULL, true), EINVAL, "mask is NULL");
  CHECK_ERR(xcall_on_each_cpu_mask(NULL, m, count_fn, NULL, true), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_on_each_cpu_mask(d, m, NULL, NULL, true), EINVAL, "func is NULL");
  CHECK_ERR(xcall_on_each_cpu_cond_mask(d, odd_cond, count_fn, NULL, true, NULL), EINVAL,
            "mask is NULL");
  CHECK_ERR(xcall_on_each_cpu_cond_mask(d, odd_cond, NULL, NULL, true, m), EINVAL, "func is NULL");
  CHECK_ERR(xcall_on_each_cpu_cond_mask(NULL, odd_cond, count_fn, NULL, true, m), EINVAL,
            "dom is NULL");
  xcall_cpumask_t* tiny = make_mask(2);
  CHECK_ERR(xcall_call_function_many(d, tiny, count_fn, NULL, true), EINVAL,
            "the mask has 2 bits, fewer than nr_cpu_ids 4");
  CHECK_ERR(xcall_call_function_any(d, tiny, count_fn, NULL, true), EINVAL,
            "fewer than nr_cpu_ids");
  CHECK_ERR(xcall_on_each_cpu_mask(d, tiny, count_fn, NULL, false), EINVAL,
            "fewer than nr_cpu_ids");
  CHECK_ERR(xcall_on_each_cpu_cond_mask(d, NULL, count_fn, NULL, true, tiny), EINVAL,
            "fewer than nr_cpu_ids");

  /* A CPU that is down: single calls fail, multi-CPU calls skip it. */
  CHECK_OK(xcall_cpu_down(d, 1));
  CHECK_ERR(xcall_call_function_single(d, 1, count_fn, NULL, true), ENXIO, "cpu 1 is offline");
  reset_ran();
  CHECK_OK(xcall_call_function_many(d, m, count_fn, NULL, true));
  expect_ran(0, 0, 0, 1);
  CHECK_OK(xcall_cpu_up(d, 1));

  /* Waiting with irqs soft-disabled: EDEADLK at once. */
  xcall_irq_flags_t flags;
  CHECK_OK(xcall_local_irq_save(&flags));
  CHECK_ERR(xcall_call_function_single(d, 1, count_fn, NULL, true), EDEADLK,
            "made with irqs soft-disabled");
  CHECK_ERR(xcall_call_function_many(d, m, count_fn, NULL, true), EDEADLK, "irqs soft-disabled");
  CHECK_ERR(xcall_on_each_cpu(d, count_fn, NULL, true), EDEADLK, "irqs soft-disabled");
  CHECK_OK(xcall_local_irq_restore(&flags));

  /* Compositions: a function that calls, from its remote and local copies. */
  nested_dom = d;
  reset_ran();
  CHECK_OK(xcall_call_function_single(d, 0, nested_remote, NULL, true));
  CHECK(atomic_load(&nested_remote_rc) == 0);
  CHECK(atomic_load(&nested_local_irqs) == 1);
  CHECK(atomic_load(&nested_local_rc) == -EDEADLK);
  CHECK(atomic_load(&ran[1]) == 1); /* only the remote copy's call ran */

  xcall_cpumask_destroy(tiny);
  xcall_cpumask_destroy(none);
  xcall_cpumask_destroy(two);
  xcall_cpumask_destroy(all);
  xcall_cpumask_destroy(m);
  xcall_domain_destroy(d);
}

static xcall_domain_t* hotplug_dom;
static atomic_int self_down_rc = 1;
static char self_down_error[256];

static void take_self_down(void* info) {
  (void)info;
  atomic_store(&self_down_rc, xcall_cpu_down(hotplug_dom, xcall_this_cpu()));
  snprintf(self_down_error, sizeof(self_down_error), "%s", xcall_last_error());
}

static void scenario_hotplug(void) {
  xcall_domain_t* d = make_domain(3, true, XCALL_ENGINE_PERCPU);
  hotplug_dom = d;
  CHECK(xcall_cpu_online(d, 1) == 1);
  CHECK_OK(xcall_cpu_down(d, 1));
  CHECK(xcall_cpu_online(d, 1) == 0);
  CHECK(xcall_cpumask_weight(xcall_online_mask(d)) == 2);
  CHECK(xcall_cpumask_test_cpu(xcall_online_mask(d), 1) == 0);
  CHECK_OK(xcall_cpu_down(d, 1)); /* idempotent */
  CHECK_OK(xcall_cpu_up(d, 1));
  CHECK(xcall_cpu_online(d, 1) == 1);
  CHECK_OK(xcall_cpu_up(d, 1));

  CHECK_ERR(xcall_cpu_online(d, 3), ENXIO,
            "xcall_cpu_online: cpu 3 is out of range (nr_cpu_ids 3)");
  CHECK_ERR(xcall_cpu_down(d, 3), ENXIO, "xcall_cpu_down: cpu 3 is out of range (nr_cpu_ids 3)");
  CHECK_ERR(xcall_cpu_up(d, 7), ENXIO, "xcall_cpu_up: cpu 7 is out of range");
  CHECK_ERR(xcall_cpu_down(NULL, 0), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_cpu_up(NULL, 0), EINVAL, "dom is NULL");

  xcall_irq_flags_t flags;
  CHECK_OK(xcall_local_irq_save(&flags));
  CHECK_ERR(xcall_cpu_down(d, 2), EDEADLK, "cpu 2: hotplug with irqs soft-disabled");
  CHECK_ERR(xcall_cpu_up(d, 2), EDEADLK, "irqs soft-disabled");
  CHECK_OK(xcall_local_irq_restore(&flags));
  CHECK(xcall_cpu_online(d, 2) == 1);

  CHECK_OK(xcall_call_function_single(d, 2, take_self_down, NULL, true));
  CHECK(atomic_load(&self_down_rc) == -EDEADLK);
  CHECK(strstr(self_down_error, "xcall_cpu_down: cpu 2 is the caller's own CPU") != NULL);
  CHECK(xcall_cpu_online(d, 2) == 1);

  xcall_domain_t* att = make_domain(2, false, XCALL_ENGINE_PERCPU);
  CHECK(xcall_cpu_online(att, 0) == 0);
  CHECK_ERR(xcall_cpu_up(att, 0), EOPNOTSUPP, "cpu 0 is not an owned CPU");
  CHECK_ERR(xcall_cpu_down(att, 1), EOPNOTSUPP, "cpu 1 is not an owned CPU");
  xcall_domain_destroy(att);
  xcall_domain_destroy(d);
}

/* A descriptor embedded in the caller's own struct. */
struct work {
  int payload;
  xcall_csd_t csd;
  atomic_int done;
  atomic_int on_cpu;
};

static void work_fn(void* info) {
  struct work* w = info;
  CHECK(w->payload == 42);
  atomic_store(&w->on_cpu, (int)xcall_this_cpu());
  atomic_fetch_add(&w->done, 1);
}

static xcall_csd_t static_csd; /* static storage */
static atomic_int static_runs;

static void static_fn(void* info) {
  CHECK(info == &static_runs);
  atomic_fetch_add(&static_runs, 1);
}

static void scenario_async(void) {
  CHECK_ERR(xcall_csd_init(NULL, count_fn, NULL), EINVAL, "xcall_csd_init: csd is NULL");
  CHECK_ERR(xcall_csd_set(NULL, count_fn, NULL), EINVAL, "xcall_csd_set: csd is NULL");
  CHECK_ERR(xcall_csd_in_flight(NULL), EINVAL, "xcall_csd_in_flight: csd is NULL");
  CHECK(sizeof(xcall_csd_t) == 64);

  xcall_domain_t* d = make_domain(2, true, XCALL_ENGINE_PERCPU);
  CHECK_OK(xcall_csd_init(&static_csd, static_fn, &static_runs));
  CHECK(xcall_csd_in_flight(&static_csd) == 0);
  /* Reuse as soon as it is no longer in flight. */
  for (int i = 0; i < 1000; ++i) {
    const double end = now_s() + 10.0;
    while (xcall_csd_in_flight(&static_csd) == 1) CHECK(now_s() < end);
    CHECK_OK(xcall_call_function_single_async(d, 1, &static_csd));
  }
  CHECK(wait_for(&static_runs, 1000));
  CHECK(atomic_load(&static_runs) == 1000);

  CHECK_ERR(xcall_call_function_single_async(NULL, 1, &static_csd), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_call_function_single_async(d, 1, NULL), EINVAL, "csd is NULL");
  CHECK_ERR(xcall_call_function_single_async(d, 2, &static_csd), ENXIO, "cpu 2 is out of range");
  xcall_csd_t nofunc;
  CHECK_OK(xcall_csd_init(&nofunc, NULL, NULL));
  CHECK_ERR(xcall_call_function_single_async(d, 1, &nofunc), EINVAL,
            "xcall_call_function_single_async: the descriptor's func is NULL");
  xcall_domain_destroy(d);

  /* In flight, detectably: the target is attached and does not poll. */
  d = make_domain(2, false, XCALL_ENGINE_PERCPU);
  struct host h;
  host_start(&h, d, 1, XCALL_DELIVERY_POLL, false);
  struct work w;
  memset(&w, 0, sizeof(w));
  w.payload = 42;
  CHECK_OK(xcall_csd_init(&w.csd, work_fn, &w));
  CHECK_OK(xcall_call_function_single_async(d, 1, &w.csd));
  CHECK(xcall_csd_in_flight(&w.csd) == 1);
  CHECK_ERR(xcall_call_function_single_async(d, 1, &w.csd), EBUSY,
            "xcall_call_function_single_async: the descriptor is still in flight");
  CHECK_ERR(xcall_csd_set(&w.csd, count_fn, NULL), EBUSY,
            "xcall_csd_set: the descriptor is in flight");
  CHECK(atomic_load(&w.done) == 0);
  atomic_store(&h.polling, 1);
  CHECK(wait_for(&w.done, 1));
  CHECK(atomic_load(&w.on_cpu) == 1);
  CHECK(xcall_csd_in_flight(&w.csd) == 0);
  CHECK_OK(xcall_csd_set(&w.csd, work_fn, &w));
  CHECK_OK(xcall_call_function_single_async(d, 1, &w.csd));
  CHECK(wait_for(&w.done, 2));
  CHECK_ERR(xcall_call_function_single_async(d, 0, &w.csd), ENXIO, "cpu 0 is offline");

  /* Addressed to the caller's own CPU: run before the call returns. */
  xcall_attachment_t* me = NULL;
  CHECK_OK(xcall_attach(d, 0, NULL, &me));
  const double end = now_s() + 10.0;
  while (xcall_csd_in_flight(&w.csd) == 1) CHECK(now_s() < end);
  CHECK_OK(xcall_call_function_single_async(d, 0, &w.csd));
  CHECK(atomic_load(&w.done) == 3 && atomic_load(&w.on_cpu) == 0);
  CHECK_OK(xcall_detach(me));
  host_stop(&h);
  xcall_domain_destroy(d);
}

static void* attach_other(void* arg) {
  xcall_domain_t* d = arg;
  xcall_attachment_t* a = NULL;
  CHECK_ERR(xcall_attach(d, 0, NULL, &a), EBUSY, "xcall_attach: xcall::domain::attach(0)");
  CHECK(a == NULL);
  return NULL;
}

static atomic_int host_thread_matched;
static pthread_t expected_thread;

static void on_host_thread(void* info) {
  (void)info;
  atomic_store(&host_thread_matched, pthread_equal(pthread_self(), expected_thread) ? 1 : 2);
}

static void scenario_attach(void) {
  xcall_domain_t* owned = make_domain(1, true, XCALL_ENGINE_PERCPU);
  xcall_attachment_t* a = NULL;
  CHECK_ERR(xcall_attach(owned, 0, NULL, &a), EOPNOTSUPP, "xcall_attach: ");
  CHECK(a == NULL);
  xcall_domain_destroy(owned);

  xcall_domain_t* d = make_domain(2, false, XCALL_ENGINE_PERCPU);
  CHECK_ERR(xcall_attach(d, 5, NULL, &a), ENXIO, "xcall_attach: ");
  CHECK_ERR(xcall_attach(NULL, 0, NULL, &a), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_attach(d, 0, NULL, NULL), EINVAL, "out is NULL");
  CHECK_ERR(xcall_attach_options_init(NULL), EINVAL, "how is NULL");
  xcall_attach_options_t how;
  CHECK_OK(xcall_attach_options_init(&how));
  CHECK(how.size == sizeof(how) && how.delivery == XCALL_DELIVERY_POLL && !how.proxy);
  how.delivery = 7;
  CHECK_ERR(xcall_attach(d, 0, &how, &a), EINVAL, "xcall_attach: ");
  CHECK_OK(xcall_attach_options_init(&how));
  how.size = 1;
  CHECK_ERR(xcall_attach(d, 0, &how, &a), EINVAL, "how->size 1 is below the first version's");
  CHECK(a == NULL && xcall_cpu_online(d, 0) == 0);

  CHECK_OK(xcall_attach(d, 0, NULL, &a));
  CHECK(a != NULL);
  CHECK(xcall_this_cpu() == 0 && xcall_attachment_cpu(a) == 0);
  CHECK(xcall_attachment_doorbell_fd(a) == -1);
  CHECK(xcall_cpu_online(d, 0) == 1);
  xcall_attachment_t* b = NULL;
  CHECK_ERR(xcall_attach(d, 1, NULL, &b), EBUSY, "xcall_attach: ");
  pthread_t t;
  CHECK(pthread_create(&t, NULL, attach_other, d) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  /* A self-addressed waiting call runs here, locally. */
  reset_ran();
  CHECK_OK(xcall_call_function_single(d, 0, count_fn, NULL, true));
  CHECK(atomic_load(&ran[0]) == 1);
  CHECK_OK(xcall_detach(a));
  CHECK(xcall_this_cpu() == XCALL_NO_CPU && xcall_cpu_online(d, 0) == 0);
  CHECK_ERR(xcall_detach(NULL), EINVAL, "xcall_detach: att is NULL");
  CHECK(xcall_attachment_cpu(NULL) == XCALL_NO_CPU);
  CHECK(xcall_attachment_doorbell_fd(NULL) == -1);

  /* fd delivery has a doorbell descriptor. */
  CHECK_OK(xcall_attach_options_init(&how));
  how.delivery = XCALL_DELIVERY_FD;
  CHECK_OK(xcall_attach(d, 1, &how, &a));
  CHECK(xcall_attachment_doorbell_fd(a) >= 0 && xcall_attachment_cpu(a) == 1);
  CHECK_OK(xcall_detach(a));

  /* A call reaches the host thread at its poll. */
  struct host h;
  host_start(&h, d, 1, XCALL_DELIVERY_POLL, true);
  expected_thread = h.thread;
  CHECK_OK(xcall_call_function_single(d, 1, on_host_thread, NULL, true));
  CHECK(atomic_load(&host_thread_matched) == 1);
  host_stop(&h);
  CHECK(xcall_cpu_online(d, 1) == 0);
  xcall_domain_destroy(d);
}

static xcall_domain_t* sender_dom;
static unsigned sender_cpu;
static long sender_delay_ms;

static void* send_nowait(void* arg) {
  (void)arg;
  if (sender_delay_ms > 0) nap_ms(sender_delay_ms);
  CHECK_OK(xcall_call_function_single(sender_dom, sender_cpu, count_fn, NULL, false));
  return NULL;
}

static void send_from_thread(xcall_domain_t* d, unsigned cpu, long delay_ms, pthread_t* t) {
  sender_dom = d;
  sender_cpu = cpu;
  sender_delay_ms = delay_ms;
  CHECK(pthread_create(t, NULL, send_nowait, NULL) == 0);
}

static void scenario_idle_wait(void) {
  /* Not a host: nothing to run, back at once even "forever". */
  CHECK(xcall_idle_wait(0) == 0);
  CHECK(xcall_idle_wait(XCALL_WAIT_FOREVER) == 0);

  xcall_domain_t* d = make_domain(1, false, XCALL_ENGINE_PERCPU);
  xcall_attachment_t* a = NULL;
  CHECK_OK(xcall_attach(d, 0, NULL, &a));
  CHECK(xcall_idle_wait(0) == 0);
  double t0 = now_s();
  CHECK(xcall_idle_wait(20 * 1000000ull) == 0);
  CHECK(now_s() - t0 >= 0.015);

  reset_ran();
  pthread_t t;
  send_from_thread(d, 0, 30, &t);
  CHECK(xcall_idle_wait(XCALL_WAIT_FOREVER) == 1);
  CHECK(atomic_load(&ran[0]) == 1);
  CHECK(pthread_join(t, NULL) == 0);

  /* Above INT64_MAX saturates to "forever" rather than wrapping to a past
   * deadline (which would return 0 at once). */
  send_from_thread(d, 0, 30, &t);
  CHECK(xcall_idle_wait(UINT64_MAX - 1) == 1);
  CHECK(atomic_load(&ran[0]) == 2);
  CHECK(pthread_join(t, NULL) == 0);
  send_from_thread(d, 0, 30, &t);
  CHECK(xcall_idle_wait((uint64_t)INT64_MAX + 1) == 1);
  CHECK(atomic_load(&ran[0]) == 3);
  CHECK(pthread_join(t, NULL) == 0);

  /* A queued call is run by idle_wait(0). */
  send_from_thread(d, 0, 0, &t);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(xcall_idle_wait(0) == 1);
  CHECK(atomic_load(&ran[0]) == 4);

  /* With irqs soft-disabled: nothing could run, back at once. */
  xcall_irq_flags_t f;
  CHECK_OK(xcall_local_irq_save(&f));
  t0 = now_s();
  CHECK(xcall_idle_wait(XCALL_WAIT_FOREVER) == 0);
  CHECK(now_s() - t0 < 5.0);
  CHECK_OK(xcall_local_irq_restore(&f));
  CHECK_OK(xcall_detach(a));
  xcall_domain_destroy(d);
}

static xcall_irq_flags_t foreign_flags;
static void* restore_foreign(void* arg) {
  (void)arg;
  CHECK_ERR(xcall_local_irq_restore(&foreign_flags), EINVAL, "flags was begun on another thread");
  return NULL;
}

static void scenario_irq(void) {
  CHECK_ERR(xcall_local_irq_save(NULL), EINVAL, "xcall_local_irq_save: flags is NULL");
  CHECK_ERR(xcall_local_irq_restore(NULL), EINVAL, "xcall_local_irq_restore: flags is NULL");
  CHECK(!xcall_irqs_disabled());
  xcall_irq_flags_t a, b;
  CHECK_OK(xcall_local_irq_save(&a));
  CHECK(xcall_irqs_disabled());
  CHECK_OK(xcall_local_irq_restore(&a));
  CHECK(!xcall_irqs_disabled());

  /* Calls sent by others wait for the last restore; poll does not run them. */
  xcall_domain_t* d = make_domain(2, false, XCALL_ENGINE_PERCPU);
  xcall_attachment_t* att = NULL;
  CHECK_OK(xcall_attach(d, 0, NULL, &att));
  reset_ran();
  CHECK_OK(xcall_local_irq_save(&a));
  CHECK_OK(xcall_local_irq_save(&b));
  pthread_t t;
  send_from_thread(d, 0, 0, &t);
  CHECK(pthread_join(t, NULL) == 0);
  xcall_poll();
  CHECK(atomic_load(&ran[0]) == 0);
  /* A self-addressed no-wait call still runs at once, as in the kernel. */
  CHECK_OK(xcall_call_function_single(d, 0, count_fn, NULL, false));
  CHECK(atomic_load(&ran[0]) == 1);
  CHECK_OK(xcall_local_irq_restore(&b));
  CHECK(xcall_irqs_disabled());
  CHECK(atomic_load(&ran[0]) == 1);
  CHECK_OK(xcall_local_irq_restore(&a));
  CHECK(!xcall_irqs_disabled());
  CHECK(atomic_load(&ran[0]) == 2); /* the last restore ran it */

  /* Misuse: nothing changes. */
  CHECK_ERR(xcall_local_irq_restore(&a), EINVAL, "flags was not begun, was already ended");
  xcall_irq_flags_t never;
  memset(&never, 0, sizeof(never));
  CHECK_ERR(xcall_local_irq_restore(&never), EINVAL, "was not begun");
  CHECK_OK(xcall_local_irq_save(&a));
  CHECK_OK(xcall_local_irq_save(&b));
  CHECK_ERR(xcall_local_irq_restore(&a), EINVAL, "flags is not the innermost one still open");
  CHECK(xcall_irqs_disabled());
  xcall_irq_flags_t copy = b;
  CHECK_ERR(xcall_local_irq_restore(&copy), EINVAL, "is a copy of the one begun");
  CHECK_OK(xcall_local_irq_restore(&b));
  CHECK_OK(xcall_local_irq_restore(&a));
  CHECK(!xcall_irqs_disabled());
  CHECK_OK(xcall_local_irq_save(&foreign_flags));
  CHECK(pthread_create(&t, NULL, restore_foreign, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(xcall_irqs_disabled());
  CHECK_OK(xcall_local_irq_restore(&foreign_flags));
  CHECK(!xcall_irqs_disabled());

  CHECK_OK(xcall_detach(att));
  xcall_domain_destroy(d);
}

/* The proxy scenario: the helper's waiting call runs while the host is
 * parked in its blocking region. */
static xcall_domain_t* proxy_dom;
static atomic_int proxy_seen_cpu = -1;
static atomic_int proxy_on_caller = 0;
static atomic_int proxy_done = 0;
static pthread_t proxy_caller;

static void proxy_fn(void* info) {
  (void)info;
  atomic_store(&proxy_seen_cpu, (int)xcall_this_cpu());
  atomic_store(&proxy_on_caller, pthread_equal(pthread_self(), proxy_caller) ? 1 : 2);
}

static void* proxy_call(void* arg) {
  (void)arg;
  CHECK_OK(xcall_call_function_single(proxy_dom, 0, proxy_fn, NULL, true));
  atomic_store(&proxy_done, 1);
  return NULL;
}

static void scenario_blocking_region(void) {
  CHECK_ERR(xcall_blocking_region_enter(NULL), EINVAL, "region is NULL");
  CHECK_ERR(xcall_blocking_region_leave(NULL), EINVAL, "region is NULL");

  xcall_domain_t* d = make_domain(1, false, XCALL_ENGINE_PERCPU);
  proxy_dom = d;
  xcall_attach_options_t how;
  CHECK_OK(xcall_attach_options_init(&how));
  how.proxy = true;
  xcall_attachment_t* att = NULL;
  CHECK_OK(xcall_attach(d, 0, &how, &att));
  xcall_blocking_region_t r;
  CHECK_OK(xcall_blocking_region_enter(&r));
  CHECK(xcall_this_cpu() == XCALL_NO_CPU);
  CHECK(pthread_create(&proxy_caller, NULL, proxy_call, NULL) == 0);
  CHECK(wait_for(&proxy_done, 1)); /* we are "blocked" here, and never poll */
  CHECK(pthread_join(proxy_caller, NULL) == 0);
  CHECK(atomic_load(&proxy_seen_cpu) == 0);
  CHECK(atomic_load(&proxy_on_caller) == 1);
  CHECK_OK(xcall_blocking_region_leave(&r));
  CHECK(xcall_this_cpu() == 0);
  CHECK_ERR(xcall_blocking_region_leave(&r), EINVAL, "region was not begun, was already ended");
  xcall_cpu_stats_t s;
  CHECK(xcall_domain_stats(d, &s, 1, sizeof(s)) == 1);
  CHECK(s.proxy_runs == 1);
  CHECK_OK(xcall_detach(att));

  /* Without proxy the region changes nothing. */
  CHECK_OK(xcall_attach(d, 0, NULL, &att));
  CHECK_OK(xcall_blocking_region_enter(&r));
  CHECK(xcall_this_cpu() == 0);
  CHECK_OK(xcall_blocking_region_leave(&r));
  CHECK_OK(xcall_detach(att));
  xcall_domain_destroy(d);
}

static void scenario_loop_wait(void) {
  CHECK_ERR(xcall_loop_wait_begin(NULL), EINVAL, "xcall_loop_wait_begin: wait is NULL");
  CHECK_ERR(xcall_loop_wait_end(NULL), EINVAL, "xcall_loop_wait_end: wait is NULL");

  xcall_domain_t* d = make_domain(1, false, XCALL_ENGINE_PERCPU);
  xcall_attach_options_t how;
  CHECK_OK(xcall_attach_options_init(&how));
  how.delivery = XCALL_DELIVERY_FD;
  xcall_attachment_t* att = NULL;
  CHECK_OK(xcall_attach(d, 0, &how, &att));
  const int fd = xcall_attachment_doorbell_fd(att);
  CHECK(fd >= 0);
  reset_ran();

  /* Nothing queued: may block; a call makes the fd readable; end runs it. */
  xcall_loop_wait_t w;
  CHECK(xcall_loop_wait_begin(&w) == 1);
  pthread_t t;
  send_from_thread(d, 0, 10, &t);
  struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
  CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN));
  CHECK(atomic_load(&ran[0]) == 0);
  CHECK_OK(xcall_loop_wait_end(&w));
  CHECK(atomic_load(&ran[0]) == 1);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK_ERR(xcall_loop_wait_end(&w), EINVAL, "wait was not begun, was already ended");

  /* Already queued: must not block. */
  send_from_thread(d, 0, 0, &t);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(xcall_loop_wait_begin(&w) == 0);
  CHECK_OK(xcall_loop_wait_end(&w));
  CHECK(atomic_load(&ran[0]) == 2);

  xcall_cpu_stats_t s;
  CHECK(xcall_domain_stats(d, &s, 1, sizeof(s)) == 1);
  CHECK(s.doorbell_fd_writes == 1);
  CHECK_OK(xcall_detach(att));
  xcall_domain_destroy(d);
}

static void scenario_stats(void) {
  xcall_domain_t* d = make_domain(2, true, XCALL_ENGINE_PERCPU);
  for (int i = 0; i < 3; ++i) CHECK_OK(xcall_call_function_single(d, 1, count_fn, NULL, true));
  xcall_cpu_stats_t s[2];
  memset(s, 0, sizeof(s));
  CHECK(xcall_domain_stats(d, s, 2, sizeof(s[0])) == 2);
  CHECK(s[0].size == sizeof(s[0]) && s[1].size == sizeof(s[1]));
  CHECK(s[0].cpu == 0 && s[1].cpu == 1 && s[0].online && s[1].online);
  CHECK(s[1].calls_run == 3 && s[0].calls_run == 0);

  /* count smaller than nr_cpu_ids: only those written, nr_cpu_ids returned. */
  memset(s, 0x5a, sizeof(s));
  CHECK(xcall_domain_stats(d, s, 1, sizeof(s[0])) == 2);
  CHECK(s[0].cpu == 0 && s[1].cpu == 0x5a5a5a5au);
  CHECK(xcall_domain_stats(d, NULL, 0, sizeof(s[0])) == 2);

  /* A larger element (a later caller): the stride is the caller's. */
  struct wide {
    xcall_cpu_stats_t s;
    uint64_t later;
  } wide[2];
  memset(wide, 0x77, sizeof(wide));
  CHECK(xcall_domain_stats(d, &wide[0].s, 2, sizeof(wide[0])) == 2);
  CHECK(wide[1].s.cpu == 1 && wide[1].s.calls_run == 3 &&
        wide[1].s.size == sizeof(xcall_cpu_stats_t));
  CHECK(wide[0].later == 0x7777777777777777ull);

  CHECK_ERR(xcall_domain_stats(d, s, 2, XCALL_CPU_STATS_SIZE_V1 - 8), EINVAL,
            "pass sizeof(xcall_cpu_stats_t)");
  CHECK_ERR(xcall_domain_stats(NULL, s, 2, sizeof(s[0])), EINVAL, "dom is NULL");
  CHECK_ERR(xcall_domain_stats(d, NULL, 2, sizeof(s[0])), EINVAL, "out is NULL");

  /* Formatting, snprintf-style. */
  CHECK(xcall_domain_stats(d, s, 2, sizeof(s[0])) == 2);
  char buf[4096];
  const ssize_t n = xcall_format_stats(s, 2, sizeof(s[0]), 16, buf, sizeof(buf));
  CHECK(n > 0 && (size_t)n == strlen(buf));
  CHECK(strstr(buf, "CPU1") != NULL && strstr(buf, "CFR") != NULL && strstr(buf, "DFW") != NULL);
  char small[8];
  CHECK(xcall_format_stats(s, 2, sizeof(s[0]), 16, small, sizeof(small)) == n);
  CHECK(strlen(small) == 7 && strncmp(small, buf, 7) == 0);
  CHECK(xcall_format_stats(s, 2, sizeof(s[0]), 16, NULL, 0) == n);
  CHECK_ERR(xcall_format_stats(NULL, 2, sizeof(s[0]), 16, buf, sizeof(buf)), EINVAL,
            "stats is NULL");
  CHECK_ERR(xcall_format_stats(s, 2, sizeof(s[0]), 16, NULL, 10), EINVAL, "buf is NULL");
  CHECK_ERR(xcall_format_stats(s, 2, 4, 16, buf, sizeof(buf)), EINVAL, "elem_size 4 is below");
  xcall_domain_destroy(d);
}

/* The stall watchdog reports to a C callback on the waiting thread. */
struct stall_record {
  atomic_int reports;
  atomic_int unstuck;
  struct host* host;
  unsigned target;
  unsigned waiter_cpu;
  xcall_func_t func;
  void* info;
  size_t size;
  char line[512];
  char func_name[128];
  pid_t target_tid;
  char target_thread_state;
  int64_t runnable_wait_ns;
  int64_t sched_window_ns;
};

void stall_target_fn(void* info); /* exported: the report names it */
void stall_target_fn(void* info) { (void)info; }

static void on_stall(const xcall_stall_report_t* r, void* arg) {
  struct stall_record* rec = arg;
  if (r->unstuck) {
    atomic_store(&rec->unstuck, 1);
    return;
  }
  if (atomic_fetch_add(&rec->reports, 1) == 0) {
    rec->target = r->target;
    rec->waiter_cpu = r->waiter_cpu;
    rec->func = r->func;
    rec->info = r->info;
    rec->size = r->size;
    snprintf(rec->line, sizeof(rec->line), "%s", r->line);
    snprintf(rec->func_name, sizeof(rec->func_name), "%s", r->func_name);
    rec->target_tid = r->target_tid;
    rec->target_thread_state = r->target_thread_state;
    rec->runnable_wait_ns = r->target_runnable_wait_ns;
    rec->sched_window_ns = r->target_sched_window_ns;
  }
  atomic_store(&rec->host->polling, 1); /* unstick it */
}

static void scenario_stall(void) {
  unsetenv("XCALL_STALL_TIMEOUT_MS");
  static struct stall_record rec;
  xcall_domain_options_t o;
  CHECK_OK(xcall_domain_options_init(&o));
  o.nr_cpus = 2;
  o.start_threads = false;
  o.stall_timeout_ns = 20 * 1000000LL;
  o.on_stall = on_stall;
  o.on_stall_arg = &rec;
  xcall_domain_t* d = NULL;
  CHECK_OK(xcall_domain_create(&o, &d));
  xcall_domain_options_t got;
  got.size = sizeof(got);
  CHECK_OK(xcall_domain_get_options(d, &got));
  CHECK(got.on_stall == on_stall && got.on_stall_arg == &rec);
  CHECK(got.stall_timeout_ns == 20 * 1000000LL);

  struct host h;
  host_start(&h, d, 1, XCALL_DELIVERY_POLL, false);
  rec.host = &h;
  int token = 0;
  CHECK_OK(xcall_call_function_single(d, 1, stall_target_fn, &token, true));
  CHECK(atomic_load(&rec.reports) >= 1);
  CHECK(atomic_load(&rec.unstuck) == 1);
  CHECK(rec.size == sizeof(xcall_stall_report_t));
  CHECK(rec.target == 1 && rec.waiter_cpu == XCALL_NO_CPU);
  CHECK(rec.func == stall_target_fn && rec.info == &token);
  CHECK(strstr(rec.func_name, "stall_target_fn") != NULL);
  CHECK(strstr(rec.line, "stall_target_fn") != NULL && strstr(rec.line, "CPU 1") != NULL);
  /* the host thread as the scheduler saw it, measured over the report's window */
  CHECK(rec.target_tid > 0 && rec.target_thread_state != 0);
  CHECK(rec.runnable_wait_ns >= 0 && rec.sched_window_ns > 0);
  CHECK(strstr(rec.line, "host tid ") != NULL);
  xcall_cpu_stats_t s[2];
  CHECK(xcall_domain_stats(d, s, 2, sizeof(s[0])) == 2);
  CHECK(s[1].stalls_reported >= 1);
  host_stop(&h);
  xcall_domain_destroy(d);
}

/* ---- concurrency ----------------------------------------------------------------- */

static atomic_int churn_stop;
static xcall_cpumask_t* live_mask;

static void* churn_main(void* arg) {
  const unsigned cpu = (unsigned)(uintptr_t)arg;
  while (!atomic_load(&churn_stop)) {
    CHECK(xcall_cpumask_test_and_set_cpu(live_mask, cpu) >= 0);
    CHECK_OK(xcall_cpumask_clear_cpu(live_mask, cpu));
  }
  return NULL;
}

struct caller_arg {
  xcall_domain_t* dom;
  int iterations;
  bool wait;
};

static void* caller_main(void* arg) {
  struct caller_arg* c = arg;
  for (int i = 0; i < c->iterations; ++i) {
    CHECK_OK(xcall_call_function_many(c->dom, live_mask, count_fn, NULL, c->wait));
  }
  return NULL;
}

/* The seed's case: callers pass a mask whose bits other threads flip. CPU 1
 * stays set and must run every call exactly once; CPUs 2 and 3 flip and run
 * at most once per call; CPU 0 is never set and never runs. */
static void scenario_live_mask(int engine) {
  xcall_domain_t* d = make_domain(4, true, engine);
  live_mask = make_mask(4);
  CHECK_OK(xcall_cpumask_set_cpu(live_mask, 1));
  reset_ran();
  atomic_store(&churn_stop, 0);
  pthread_t churn[2];
  CHECK(pthread_create(&churn[0], NULL, churn_main, (void*)(uintptr_t)2) == 0);
  CHECK(pthread_create(&churn[1], NULL, churn_main, (void*)(uintptr_t)3) == 0);
  enum { kIterations = 300 };
  struct caller_arg args[2] = {{d, kIterations, true}, {d, kIterations, true}};
  pthread_t callers[2];
  for (int i = 0; i < 2; ++i) CHECK(pthread_create(&callers[i], NULL, caller_main, &args[i]) == 0);
  for (int i = 0; i < 2; ++i) CHECK(pthread_join(callers[i], NULL) == 0);
  atomic_store(&churn_stop, 1);
  for (int i = 0; i < 2; ++i) CHECK(pthread_join(churn[i], NULL) == 0);
  CHECK(atomic_load(&ran[0]) == 0);
  CHECK(atomic_load(&ran[1]) == 2 * kIterations);
  CHECK(atomic_load(&ran[2]) <= 2 * kIterations);
  CHECK(atomic_load(&ran[3]) <= 2 * kIterations);
  xcall_cpumask_destroy(live_mask);
  xcall_domain_destroy(d);
}

struct sender {
  xcall_domain_t* dom;
  unsigned cpu;
  struct work w;
  int count;
};

static void* async_sender(void* arg) {
  struct sender* s = arg;
  for (int i = 0; i < s->count; ++i) {
    const double end = now_s() + 10.0;
    while (xcall_csd_in_flight(&s->w.csd) == 1) {
      CHECK(now_s() < end);
      sched_yield();
    }
    CHECK_OK(xcall_call_function_single_async(s->dom, s->cpu, &s->w.csd));
  }
  return NULL;
}

/* C threads attach, poll, and detach while callers fan out to them and
 * senders stream async calls through their own descriptors. */
static void scenario_attached_threads(void) {
  enum { kCpus = 3, kRounds = 200 };
  xcall_domain_t* d = make_domain(kCpus, false, XCALL_ENGINE_PERCPU);
  struct host hosts[kCpus];
  for (unsigned c = 0; c < kCpus; ++c) host_start(&hosts[c], d, c, XCALL_DELIVERY_POLL, true);
  CHECK(xcall_cpumask_weight(xcall_online_mask(d)) == kCpus);

  struct sender senders[2];
  pthread_t st[2];
  for (int i = 0; i < 2; ++i) {
    memset(&senders[i], 0, sizeof(senders[i]));
    senders[i].dom = d;
    senders[i].cpu = (unsigned)i;
    senders[i].w.payload = 42;
    senders[i].count = kRounds;
    CHECK_OK(xcall_csd_init(&senders[i].w.csd, work_fn, &senders[i].w));
    CHECK(pthread_create(&st[i], NULL, async_sender, &senders[i]) == 0);
  }
  reset_ran();
  atomic_int total = 0;
  for (int r = 0; r < kRounds; ++r) CHECK_OK(xcall_on_each_cpu(d, count_fn, &total, true));
  for (unsigned c = 0; c < kCpus; ++c) CHECK(atomic_load(&ran[c]) == kRounds);
  CHECK(atomic_load(&total) == kCpus * kRounds);
  for (int i = 0; i < 2; ++i) {
    CHECK(pthread_join(st[i], NULL) == 0);
    CHECK(wait_for(&senders[i].w.done, kRounds));
    CHECK(atomic_load(&senders[i].w.done) == kRounds);
    CHECK(atomic_load(&senders[i].w.on_cpu) == i);
  }
  for (unsigned c = 0; c < kCpus; ++c) host_stop(&hosts[c]);
  CHECK(xcall_cpumask_weight(xcall_online_mask(d)) == 0);
  xcall_domain_destroy(d);
}

/* ---- main ---------------------------------------------------------------------- */

static void scenario_calls_percpu(void) { scenario_calls(XCALL_ENGINE_PERCPU); }
static void scenario_calls_classic(void) { scenario_calls(XCALL_ENGINE_CLASSIC); }
static void scenario_live_mask_percpu(void) { scenario_live_mask(XCALL_ENGINE_PERCPU); }
static void scenario_live_mask_classic(void) { scenario_live_mask(XCALL_ENGINE_CLASSIC); }

static const struct {
  const char* name;
  void (*run)(void);
} scenarios[] = {
    {"last_error", scenario_last_error},
    {"options", scenario_options},
    {"cpumask", scenario_cpumask},
    {"calls.percpu", scenario_calls_percpu},
    {"calls.classic", scenario_calls_classic},
    {"hotplug", scenario_hotplug},
    {"async", scenario_async},
    {"attach", scenario_attach},
    {"idle_wait", scenario_idle_wait},
    {"irq", scenario_irq},
    {"blocking_region", scenario_blocking_region},
    {"loop_wait", scenario_loop_wait},
    {"stats", scenario_stats},
    {"stall", scenario_stall},
    {"live_mask.percpu", scenario_live_mask_percpu},
    {"live_mask.classic", scenario_live_mask_classic},
    {"attached_threads", scenario_attached_threads},
};

int main(int argc, char** argv) {
  const size_t n = sizeof(scenarios) / sizeof(scenarios[0]);
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < n; ++i) printf("%s\n", scenarios[i].name);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "--check-list") == 0) {
    /* CTest's list (tests/c/CMakeLists.txt) must name every scenario, once. */
    int bad = argc - 2 != (int)n;
    for (size_t i = 0; i < n; ++i) {
      int found = 0;
      for (int a = 2; a < argc; ++a) found += strcmp(argv[a], scenarios[i].name) == 0;
      if (found != 1) {
        fprintf(stderr, "scenario '%s' is registered %d times with CTest\n", scenarios[i].name,
                found);
        bad = 1;
      }
    }
    return bad;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: %s <scenario> | --list | --check-list <names...>\n", argv[0]);
    return 2;
  }
  for (size_t i = 0; i < n; ++i) {
    if (strcmp(argv[1], scenarios[i].name) == 0) {
      scenarios[i].run();
      printf("%s: passed\n", argv[1]);
      return 0;
    }
  }
  fprintf(stderr, "%s: no scenario named '%s' (--list)\n", argv[0], argv[1]);
  return 2;
}
