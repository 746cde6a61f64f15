// machine.cpp — describe_machine() (machine.hpp).
#include "machine.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "affinity.hpp"
#include "clock.hpp"

#ifndef XCALL_BENCH_SOURCE_DIR
#define XCALL_BENCH_SOURCE_DIR "."
#endif

namespace xcall::bench {
namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\n");
  const auto e = s.find_last_not_of(" \t\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

/// First line of a command's output, or "" when it fails.
std::string run(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {};
  char buf[256] = {};
  const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
  const int status = pclose(p);
  return got && status == 0 ? trim(buf) : std::string();
}

std::string git_revision() {
  const std::string dir = XCALL_BENCH_SOURCE_DIR;
  std::string rev = run("git -C '" + dir + "' rev-parse --short HEAD 2>/dev/null");
  if (rev.empty()) return "unknown";
  // Uncommitted changes to tracked files: the figures are of rev plus them.
  if (!run("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty()) {
    rev += "+dirty";
  }
  return rev;
}

}  // namespace

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

machine_info describe_machine() {
  machine_info m;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon));
    const std::string value = trim(line.substr(colon + 1));
    if (m.cpu_model.empty() && (key == "model name" || key == "Model" || key == "cpu model")) {
      m.cpu_model = value;
    }
    if (key == "flags" && (" " + value + " ").find(" hypervisor ") != std::string::npos) {
      m.virtualized = true;
    }
  }
  if (m.cpu_model.empty()) m.cpu_model = "unknown CPU";
  // --vm: the hypervisor, not a container around us (which says nothing
  // about how the CPUs behave).
  m.hypervisor = run("systemd-detect-virt --vm 2>/dev/null");
  if (m.hypervisor == "none") m.hypervisor.clear();
  if (!m.hypervisor.empty()) m.virtualized = true;
  if (const std::string container = run("systemd-detect-virt --container 2>/dev/null");
      !container.empty() && container != "none") {
    m.hypervisor +=
        (m.hypervisor.empty() ? "" : ", ") + std::string("in a ") + container + " container";
  }
  m.cores = host_cores();
  m.online_cpus = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  m.git_revision = git_revision();
#if defined(__clang__)
  m.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.compiler = "g++ " __VERSION__;
#endif
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
  m.date = date;
  m.load_before = load_average();
  m.clock = clock_name();
  m.clock_read_ns = clock_read_ns();
  return m;
}

}  // namespace xcall::bench
