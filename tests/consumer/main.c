/* tests/consumer/main.c — a C11 program outside xcall that uses the C API
 * (xcall/xcall.h) the way a user would; the pkg-config consumer tests build
 * it with nothing but `pkg-config --cflags --libs xcall` (or xcall-static)
 * and the C compiler.
 *
 * It makes calls through the C API (a missing export fails the link), then
 * checks how it was linked: with XCALL_CONSUMER_SHARED=1 libxcall.so must be
 * mapped, from XCALL_CONSUMER_PREFIX when given; with 0, none may be. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <xcall/xcall.h>

static int failures = 0;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "consumer (C): FAILED %s (%s)\n", what, xcall_last_error());
    ++failures;
  }
}

static void count_run(void* info) { atomic_fetch_add((atomic_uint*)info, 1u); }

/* Whether a libxcall.so is mapped, and if `prefix` is given, from there. */
static int libxcall_mapped(const char* prefix) {
  FILE* maps = fopen("/proc/self/maps", "r");
  char line[4096];
  int found = 0;
  if (maps == NULL) return -1;
  while (fgets(line, sizeof line, maps) != NULL) {
    const char* path = strchr(line, '/');
    if (path == NULL || strstr(path, "/libxcall.so") == NULL) continue;
    if (prefix == NULL || strncmp(path, prefix, strlen(prefix)) == 0) found = 1;
  }
  fclose(maps);
  return found;
}

int main(void) {
  xcall_domain_options_t opts;
  xcall_domain_t* dom = NULL;
  atomic_uint runs = 0;
  check(xcall_domain_options_init(&opts) == 0, "xcall_domain_options_init");
  opts.nr_cpus = 2;
  check(xcall_domain_create(&opts, &dom) == 0 && dom != NULL, "xcall_domain_create");
  if (dom != NULL) {
    check(xcall_on_each_cpu(dom, count_run, &runs, true) == 0 && atomic_load(&runs) == 2,
          "xcall_on_each_cpu");
    check(xcall_call_function_single(dom, 9, count_run, &runs, true) < 0,
          "a call to a CPU that does not exist fails");
    xcall_domain_destroy(dom);
  }
#if defined(XCALL_CONSUMER_SHARED) && XCALL_CONSUMER_SHARED
#if defined(XCALL_CONSUMER_PREFIX)
  check(libxcall_mapped(XCALL_CONSUMER_PREFIX) == 1, "libxcall.so mapped from the prefix");
#else
  check(libxcall_mapped(NULL) == 1, "libxcall.so mapped");
#endif
#elif defined(XCALL_CONSUMER_SHARED)
  check(libxcall_mapped(NULL) == 0, "no libxcall.so mapped (static)");
#endif
  if (failures == 0) printf("consumer (C): OK\n");
  return failures == 0 ? 0 : 1;
}
