// dpdk_peer.cpp — DPDK's way to run a function on another core and wait:
// rte_eal_remote_launch() + rte_eal_wait_lcore() (one worker, compared with
// call_function_single) and rte_eal_mp_remote_launch() + rte_eal_mp_wait_lcore()
// (every worker; CALL_MAIN is on_each_cpu, SKIP_MAIN is call_function_many).
//
// Built only when CMake found libdpdk with pkg-config (XCALL_BENCH_HAVE_DPDK);
// otherwise the rows say so. The EAL starts without hugepages or PCI
// (--no-huge --no-pci --no-shconf), main lcore on caller_core(), one worker
// lcore on every other allowed host CPU.
//
// The EAL pins the thread that initialises it, starts worker threads that
// never exit, installs its own state for the rest of the process's life, and
// may abort on errors. So it runs in a forked child (forked before the bench
// starts any thread), which sends its summaries back through a pipe and
// exits; the bench itself never links its state with DPDK's.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "affinity.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"

#ifdef XCALL_BENCH_HAVE_DPDK
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#endif

namespace xcall::bench {
namespace {

constexpr const char* kSingleId = "peer.dpdk.remote_launch";
constexpr const char* kCallMainId = "peer.dpdk.mp_launch_call_main";
constexpr const char* kSkipMainId = "peer.dpdk.mp_launch_skip_main";
constexpr const char* kSingleLabel = "DPDK rte_eal_remote_launch + rte_eal_wait_lcore, 1 worker";
constexpr const char* kCallMainLabel =
    "DPDK rte_eal_mp_remote_launch(CALL_MAIN) + mp_wait_lcore, all lcores";
constexpr const char* kSkipMainLabel =
    "DPDK rte_eal_mp_remote_launch(SKIP_MAIN) + mp_wait_lcore, all workers";

void add_unavailable(results& out, const std::string& why) {
  out.add(unavailable(kSingleId, kSingleLabel, figure_kind::latency, why));
  out.add(unavailable(kCallMainId, kCallMainLabel, figure_kind::latency, why));
  out.add(unavailable(kSkipMainId, kSkipMainLabel, figure_kind::latency, why));
  progress("dpdk", why);
}

#ifdef XCALL_BENCH_HAVE_DPDK

constexpr int kCurvePoints = 120;

/// One latency series as it crosses the pipe (trivially copyable).
struct wire_series {
  summary s;
  int curve_n = 0;
  double curve_q[kCurvePoints];
  double curve_ns[kCurvePoints];
};

struct wire_result {
  int ok = 0;
  char message[256] = {};
  unsigned lcores = 0;
  wire_series single, call_main, skip_main;
};
static_assert(std::is_trivially_copyable_v<wire_result>, "sent through a pipe as bytes");

wire_series to_wire(std::vector<double> samples) {
  wire_series w{};
  w.s = summarize(samples);
  const auto curve = quantile_curve(samples, kCurvePoints);
  w.curve_n = static_cast<int>(curve.size());
  for (int i = 0; i < w.curve_n; ++i) {
    w.curve_q[i] = curve[static_cast<std::size_t>(i)].first;
    w.curve_ns[i] = curve[static_cast<std::size_t>(i)].second;
  }
  return w;
}

measurement from_wire(const char* id, const char* label, const wire_series& w,
                      const std::string& note) {
  measurement m;
  m.id = id;
  m.label = label;
  m.kind = figure_kind::latency;
  m.lat = w.s;
  m.note = note;
  for (int i = 0; i < w.curve_n; ++i) m.curve.emplace_back(w.curve_q[i], w.curve_ns[i]);
  return m;
}

struct alignas(64) lcore_counter {
  std::uint64_t n = 0;
};
lcore_counter g_runs[RTE_MAX_LCORE];

int count_run(void*) {
  ++g_runs[rte_lcore_id()].n;  // each lcore writes its own line
  return 0;
}

void write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n <= 0) return;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

/// The EAL leaves a runtime directory per file prefix (/var/run/dpdk/<prefix>
/// as root, $XDG_RUNTIME_DIR/dpdk/<prefix> or /tmp/dpdk/<prefix> otherwise).
void remove_runtime_dir(const std::string& prefix) {
  std::vector<std::string> bases = {"/var/run/dpdk", "/tmp/dpdk"};
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR")) bases.push_back(std::string(xdg) + "/dpdk");
  for (const std::string& base : bases) {
    std::error_code ec;
    std::filesystem::remove_all(base + "/" + prefix, ec);
  }
}

/// The child: start the EAL, measure, send, exit.
[[noreturn]] void child_main(const config& cfg, int fd, const std::string& prefix) {
  static wire_result r;  // large: not on the stack
  std::vector<std::string> args = {"xcall-bench",    "--no-huge", "--no-pci", "--no-shconf",
                                   "--no-telemetry", "-m",        "64",       "--log-level=1"};
  std::string lcores;
  for (int cpu : allowed_cpus()) {
    if (!lcores.empty()) lcores += ',';
    lcores += std::to_string(cpu);
  }
  args.insert(args.end(), {"-l", lcores, "--main-lcore", std::to_string(caller_core()),
                           "--file-prefix", prefix});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    std::snprintf(r.message, sizeof r.message, "EAL init failed (%s) with: %s",
                  rte_strerror(rte_errno), [&] {
                    static std::string joined;
                    for (std::size_t i = 1; i < args.size(); ++i) joined += args[i] + " ";
                    return joined.c_str();
                  }());
    write_all(fd, &r, sizeof r);
    _exit(0);
  }
  r.lcores = rte_lcore_count();
  const auto worker = static_cast<unsigned>(target_core());
  series_options opt = series(cfg);
  opt.samples = cfg.dpdk_samples;
  r.single = to_wire(sample_latency(opt, [worker] {
    rte_eal_remote_launch(count_run, nullptr, worker);
    rte_eal_wait_lcore(worker);
  }));
  r.call_main = to_wire(sample_latency(opt, [] {
    rte_eal_mp_remote_launch(count_run, nullptr, CALL_MAIN);
    rte_eal_mp_wait_lcore();
  }));
  r.skip_main = to_wire(sample_latency(opt, [] {
    rte_eal_mp_remote_launch(count_run, nullptr, SKIP_MAIN);
    rte_eal_mp_wait_lcore();
  }));
  rte_eal_cleanup();
  r.ok = 1;
  write_all(fd, &r, sizeof r);
  _exit(0);
}

#endif  // XCALL_BENCH_HAVE_DPDK

}  // namespace

void run_dpdk(const config& cfg, results& out) {
  if (!cfg.dpdk) {
    add_unavailable(out, "DPDK skipped (--no-dpdk)");
    return;
  }
#if !defined(XCALL_BENCH_HAVE_DPDK) && defined(XCALL_BENCH_DPDK_DISABLED)
  add_unavailable(out, "DPDK not built: disabled with -DXCALL_BENCH_DPDK=OFF");
#elif !defined(XCALL_BENCH_HAVE_DPDK)
  add_unavailable(out,
                  "DPDK not built: pkg-config found no libdpdk at configure time "
                  "(apt-get install libdpdk-dev, then reconfigure)");
#else
  if (host_cores() < 2) {
    add_unavailable(out, "DPDK needs a worker lcore: only one host CPU");
    return;
  }
  int fds[2];
  if (pipe(fds) != 0) {
    add_unavailable(out, std::string("DPDK: pipe: ") + std::strerror(errno));
    return;
  }
  // The EAL's runtime directory for this prefix; removed once the child is
  // gone. Named before the fork, so that both sides agree.
  const std::string prefix = "xcall-bench-" + std::to_string(getpid());
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) {
    add_unavailable(out, std::string("DPDK: fork: ") + std::strerror(errno));
    return;
  }
  if (pid == 0) {
    close(fds[0]);
    child_main(cfg, fds[1], prefix);
  }
  close(fds[1]);
  static wire_result r;
  std::size_t got = 0;
  auto* p = reinterpret_cast<char*>(&r);
  const double deadline = now_seconds() + 300;
  while (got < sizeof r && now_seconds() < deadline) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (::poll(&pfd, 1, 1000) <= 0) continue;
    const ssize_t n = read(fds[0], p + got, sizeof r - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  close(fds[0]);
  if (got < sizeof r) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  remove_runtime_dir(prefix);
  if (got < sizeof r) {
    add_unavailable(out, WIFSIGNALED(status)
                             ? fmt::format("DPDK child died with signal {}", WTERMSIG(status))
                             : std::string("DPDK child sent no result"));
    return;
  }
  if (!r.ok) {
    add_unavailable(out, std::string("DPDK ") + XCALL_BENCH_DPDK_VERSION + ": " + r.message);
    return;
  }
  const std::string note = fmt::format(
      "DPDK {}, EAL --no-huge --no-pci, {} lcores, main lcore on host CPU {}; a pipe "
      "wakes each worker",
      XCALL_BENCH_DPDK_VERSION, r.lcores, caller_core());
  const measurement rows[] = {from_wire(kSingleId, kSingleLabel, r.single, note),
                              from_wire(kCallMainId, kCallMainLabel, r.call_main, note),
                              from_wire(kSkipMainId, kSkipMainLabel, r.skip_main, note)};
  for (const measurement& m : rows) {
    progress("dpdk", fmt::format("{:<72} p50 {}", m.label, fmt_ns(m.lat.p50)));
    out.add(m);
  }
#endif
}

}  // namespace xcall::bench
