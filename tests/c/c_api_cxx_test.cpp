// tests/c/c_api_cxx_test.cpp — xcall/xcall.h from C++: the header compiles
// as C++ next to the C++ API, and what only a C++ caller can do through the
// C API is checked: exceptions thrown by its callbacks never cross it.
//
//   c_api_cxx_test exceptions      every exception type becomes its errno
//   c_api_cxx_test throwing_func   a throwing *function* ends the process
#include <xcall/xcall.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include <xcall/xcall.hpp>

// The header is usable from C++: same function types as the C++ API.
static_assert(std::is_same_v<xcall_func_t, xcall::call_func_t>);
static_assert(std::is_same_v<xcall_cond_func_t, xcall::cond_func_t>);
static_assert(std::is_standard_layout_v<xcall_csd_t> && std::is_trivially_copyable_v<xcall_csd_t>);
static_assert(alignof(xcall_csd_t) >= alignof(xcall::call_single_data));

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: \"%s\")\n", __FILE__, __LINE__, \
                   #cond, xcall_last_error());                                                   \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

namespace {

std::atomic<int> runs{0};
void count(void*) noexcept { runs.fetch_add(1, std::memory_order_relaxed); }

template <class E>
bool throwing_cond(unsigned, void* arg) {
  throw *static_cast<E*>(arg);
}

/// A cond that throws `e`: the call fails with -want, a message containing
/// `needle`, and nothing run.
template <class E>
void expect_mapped(xcall_domain_t* d, const xcall_cpumask_t* mask, E e, int want,
                   const char* needle) {
  runs.store(0);
  const int rc = xcall_on_each_cpu_cond_mask(d, &throwing_cond<E>, count, &e, true, mask);
  if (rc != -want || std::strstr(xcall_last_error(), needle) == nullptr ||
      std::strstr(xcall_last_error(), "xcall_on_each_cpu_cond_mask: ") == nullptr) {
    std::fprintf(stderr, "expected -%d with \"%s\", got %d: \"%s\"\n", want, needle, rc,
                 xcall_last_error());
    std::exit(1);
  }
  CHECK(runs.load() == 0);
}

void exceptions() {
  xcall_domain_t* d = nullptr;
  xcall_domain_options_t o;
  CHECK(xcall_domain_options_init(&o) == 0);
  o.nr_cpus = 2;
  CHECK(xcall_domain_create(&o, &d) == 0);
  const xcall_cpumask_t* all = xcall_online_mask(d);

  expect_mapped(d, all, std::bad_alloc(), ENOMEM, "out of memory");
  expect_mapped(d, all, std::runtime_error("boom"), EIO, "unexpected exception: boom (EIO)");
  expect_mapped(d, all, 42, EIO, "not derived from std::exception (EIO)");
  expect_mapped(d, all, std::system_error(EPERM, std::generic_category(), "no way"), EPERM,
                "no way");
  expect_mapped(d, all, std::system_error(ENOSPC, std::system_category(), "full"), ENOSPC, "full");
  expect_mapped(d, all, std::invalid_argument("bad arg"), EINVAL, "bad arg (EINVAL)");
  expect_mapped(d, all, std::out_of_range("far"), EINVAL, "far (EINVAL)");
  expect_mapped(d, all, std::length_error("long"), EINVAL, "long (EINVAL)");
  expect_mapped(d, all, std::overflow_error("big"), ERANGE, "big (ERANGE)");
  expect_mapped(d, all, std::range_error("wide"), ERANGE, "wide (ERANGE)");

  // The call after a throwing cond works: nothing was left claimed.
  runs.store(0);
  CHECK(xcall_on_each_cpu(d, count, nullptr, true) == 0);
  CHECK(runs.load() == 2);
  xcall_domain_destroy(d);
}

void throwing_function(void*) { throw std::runtime_error("from a function"); }

/// A function that throws ends the process (std::terminate), as in the C++
/// API; it never unwinds into the C caller.
void throwing_func() {
  std::fflush(nullptr);
  const pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    std::signal(SIGABRT, SIG_DFL);
    xcall_domain_t* d = nullptr;
    xcall_domain_options_t o;
    xcall_domain_options_init(&o);
    o.nr_cpus = 2;
    if (xcall_domain_create(&o, &d) != 0) _exit(3);
    (void)xcall_call_function_single(d, 1, throwing_function, nullptr, true);
    _exit(0);  // not reached
  }
  int status = 0;
  CHECK(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "exceptions") == 0) {
    exceptions();
  } else if (argc == 2 && std::strcmp(argv[1], "throwing_func") == 0) {
    throwing_func();
  } else {
    std::fprintf(stderr, "usage: %s exceptions|throwing_func\n", argv[0]);
    return 2;
  }
  std::printf("%s: passed\n", argv[1]);
  return 0;
}
