// tests/consumer/main.cpp — a program outside xcall that uses it the way a
// user would; every consumer test (add_subdirectory, find_package,
// pkg-config) builds it.
//
// It calls something from each public header that lives in the library
// (a missing export fails the link), and then checks how it was linked:
// built with XCALL_CONSUMER_SHARED=1 it must have libxcall.so mapped, from
// XCALL_CONSUMER_PREFIX when that is given; with XCALL_CONSUMER_SHARED=0 no
// libxcall.so may be mapped (the static library was linked).
#include <xcall/xcall.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED %s\n", what);
    ++failures;
  }
}

void count_run(void* info) noexcept {
  static_cast<std::atomic<unsigned>*>(info)->fetch_add(1, std::memory_order_relaxed);
}

// The path of the mapped libxcall.so.<n>, or "" when none is mapped.
std::string mapped_libxcall() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find("/libxcall.so") != std::string::npos) return path;
  }
  return "";
}

}  // namespace

int main() {
  // cpumask.hpp
  xcall::cpumask m(8);
  m.set(3);
  check(m.count() == 1 && m.first() == 3, "cpumask");

  // domain.hpp, options.hpp, csd.hpp: calls of both forms to owned CPUs.
  {
    xcall::domain dom({.nr_cpus = 2});
    std::atomic<unsigned> runs{0};
    check(!dom.on_each_cpu(count_run, &runs, true) && runs.load() == 2, "on_each_cpu");
    unsigned ran_on = xcall::no_cpu;
    check(!dom.call_function_single(1, [&] { ran_on = xcall::this_cpu(); }) && ran_on == 1,
          "callable call_function_single and this_cpu");
    xcall::call_single_data csd(count_run, &runs);
    check(!dom.call_function_single_async(0, csd), "call_function_single_async");
    while (csd.in_flight()) {
    }
    // stats.hpp
    check(xcall::format_stats(dom.stats()).find("CPU0") != std::string::npos, "format_stats");
  }

  // cpu.hpp, outside any CPU.
  {
    xcall::irq_guard guard;
    check(xcall::irqs_disabled() && xcall::this_cpu() == xcall::no_cpu, "irq_guard");
  }

  // stall.hpp
  check(!xcall::format_stall_report(xcall::stall_report{}).empty(), "format_stall_report");

#if defined(XCALL_CONSUMER_SHARED)
  const std::string lib = mapped_libxcall();
#if XCALL_CONSUMER_SHARED
  std::printf("consumer: libxcall.so mapped from %s\n", lib.c_str());
  check(!lib.empty(), "libxcall.so is mapped (the shared library was linked)");
#if defined(XCALL_CONSUMER_PREFIX)
  check(lib.rfind(XCALL_CONSUMER_PREFIX "/", 0) == 0, "libxcall.so comes from the install prefix");
#endif
#else
  check(lib.empty(), "no libxcall.so is mapped (the static library was linked)");
#endif
#endif

  if (failures == 0) std::puts("consumer: OK");
  return failures == 0 ? 0 : 1;
}
