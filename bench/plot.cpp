// plot.cpp — gnuplot charts (plot.hpp). The data goes to gnuplot inline, as
// datablocks in the script piped to it, so nothing but the PNGs is written.
#include "plot.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "format.hpp"

namespace xcall::bench {
namespace {

bool have_gnuplot() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (!d.empty() && access((d + "/gnuplot").c_str(), X_OK) == 0) return true;
  }
  return false;
}

struct curve_spec {
  std::string id;
  std::string title;
  std::string style;  ///< gnuplot "lw 2 dt 1 lc rgb '#...'"
};

/// A datablock of (1/(1-q), µs) points of a latency figure; "" if unusable.
std::string curve_block(const results& r, const std::string& id, const std::string& name) {
  const measurement* m = r.find(id);
  if (m == nullptr || !m->available || m->curve.empty()) return {};
  std::ostringstream o;
  o << "$" << name << " << EOD\n";
  for (const auto& [q, ns] : m->curve) {
    if (q >= 1.0) continue;
    o << fmt::format("{:.6g} {:.6g}\n", 1.0 / (1.0 - q), ns / 1e3);
  }
  o << "EOD\n";
  return o.str();
}

std::string distribution_chart(const results& r, const std::string& png, const std::string& title,
                               const std::vector<curve_spec>& curves) {
  std::ostringstream o;
  std::vector<std::string> plots;
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const std::string name = fmt::format("c{}", i);
    const std::string block = curve_block(r, curves[i].id, name);
    if (block.empty()) continue;
    o << block;
    plots.push_back("$" + name + " using 1:2 with lines " + curves[i].style + " title '" +
                    curves[i].title + "'");
  }
  if (plots.empty()) return {};
  o << "set output '" << png << "'\n";
  o << "set title '" << title << "'\n";
  o << "set logscale xy\nset grid xtics ytics mytics\n";
  o << "set xlabel 'percentile'\nset ylabel 'round trip (µs, log scale)'\n";
  // Tic labels are format strings to gnuplot: '%%' is a literal '%'.
  o << "set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000)\n";
  o << "set key outside right top\n";
  o << "plot ";
  for (std::size_t i = 0; i < plots.size(); ++i) o << (i ? ", \\\n     " : "") << plots[i];
  o << "\n";
  return o.str();
}

std::string scaling_chart(const results& r, const std::string& png, bool throughput) {
  if (r.scaling.empty()) return {};
  std::ostringstream o;
  for (const char* e : {"percpu", "classic"}) {
    o << "$" << e << " << EOD\n";
    for (const scaling_point& p : r.scaling) {
      if (p.engine != e) continue;
      o << fmt::format("{} {:.6g} {:.6g} {:.6g}\n", p.cpus, p.on_each_cpu.p50 / 1e3,
                       p.on_each_cpu.p99 / 1e3, p.many_calls_per_s);
    }
    o << "EOD\n";
  }
  o << "set output '" << png << "'\n";
  o << "set logscale x 2\nset grid\nset key inside left top\nset xlabel 'CPUs in the domain (sleep "
       "mode; "
    << r.machine.cores << " host cores)'\n";
  if (throughput) {
    o << "set title 'call_function_many (all CPUs, no wait), " << r.scaling.front().callers
      << " concurrent callers'\n";
    o << "set ylabel 'calls per second (log scale)'\nset logscale y\n";
    o << "plot $percpu using 1:4 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'percpu', \\\n"
         "     $classic using 1:4 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'classic'\n";
  } else {
    o << "set title 'on_each_cpu with wait, one outside caller'\n";
    o << "set ylabel 'latency (µs, log scale)'\nset logscale y\n";
    o << "plot $percpu using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'percpu p50', "
         "\\\n"
         "     $percpu using 1:3 with linespoints lw 1 dt 2 pt 7 lc rgb '#1f77b4' title 'percpu "
         "p99', \\\n"
         "     $classic using 1:2 with linespoints lw 2 pt 5 lc rgb '#d62728' title 'classic p50', "
         "\\\n"
         "     $classic using 1:3 with linespoints lw 1 dt 2 pt 5 lc rgb '#d62728' title 'classic "
         "p99'\n";
  }
  return o.str();
}

const char* kModeColor[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"};
const char* kModeIds[] = {"poll", "adaptive", "adaptive_cold", "sleep"};
const char* kModeTitles[] = {"poll", "adaptive", "adaptive, past spin", "sleep"};

}  // namespace

std::vector<std::string> write_plots(const results& r, const std::string& dir) {
  std::vector<std::string> written;
  if (!have_gnuplot()) {
    std::fprintf(
        stderr, "plot: gnuplot not found in PATH; skipping --plot (apt-get install gnuplot-nox)\n");
    return written;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);

  std::vector<curve_spec> single;
  for (int i = 0; i < 4; ++i) {
    single.push_back({fmt::format("xcall.percpu.{}.single_wait", kModeIds[i]),
                      std::string("xcall ") + kModeTitles[i],
                      fmt::format("lw 2 lc rgb '{}'", kModeColor[i])});
  }
  single.push_back({"floor.cacheline", "cache-line ping-pong", "lw 2 dt 3 lc rgb '#000000'"});
  single.push_back({"floor.futex", "futex ping-pong", "lw 2 dt 2 lc rgb '#000000'"});
  single.push_back({"peer.dpdk.remote_launch", "DPDK remote launch", "lw 2 dt 4 lc rgb '#8c564b'"});
  single.push_back(
      {"peer.mutex_queue.roundtrip", "mutex/condvar queue", "lw 2 dt 5 lc rgb '#7f7f7f'"});

  std::vector<curve_spec> each;
  for (int i = 0; i < 4; ++i) {
    each.push_back({fmt::format("xcall.percpu.{}.on_each_cpu", kModeIds[i]),
                    std::string("percpu ") + kModeTitles[i],
                    fmt::format("lw 2 lc rgb '{}'", kModeColor[i])});
  }
  for (int i = 0; i < 4; ++i) {
    each.push_back({fmt::format("xcall.classic.{}.on_each_cpu", kModeIds[i]),
                    std::string("classic ") + kModeTitles[i],
                    fmt::format("lw 1 dt 2 lc rgb '{}'", kModeColor[i])});
  }
  each.push_back({"floor.membarrier.busy", "membarrier (busy CPUs)", "lw 2 dt 3 lc rgb '#000000'"});
  each.push_back({"peer.dpdk.mp_launch_call_main", "DPDK mp launch (CALL_MAIN)",
                  "lw 2 dt 4 lc rgb '#8c564b'"});

  // Attached hosts (attached_cases.cpp), beside the floors they are compared
  // with: a polling host and the cache line, a busy host and the signal, a
  // parked host and DPDK's worker blocked in a pipe read, a host blocked in
  // epoll_wait and the eventfd ping-pong through epoll and libuv.
  std::vector<curve_spec> attached = {
      {"xcall.percpu.attached_poll.single_wait", "xcall: host polls", "lw 2 lc rgb '#1f77b4'"},
      {"xcall.percpu.attached_proxy.single_wait", "xcall: proxy, host parked in read()",
       "lw 2 lc rgb '#2ca02c'"},
      {"xcall.percpu.attached_poll_20us.single_wait", "xcall: host polls every 20 µs",
       "lw 2 lc rgb '#ff7f0e'"},
      {"xcall.percpu.attached_signal.single_wait", "xcall: signal delivery, host busy",
       "lw 2 lc rgb '#9467bd'"},
      {"xcall.percpu.attached_fd.single_wait", "xcall: fd delivery, host in epoll_wait",
       "lw 2 lc rgb '#d62728'"},
      {"floor.cacheline", "cache-line ping-pong", "lw 2 dt 3 lc rgb '#000000'"},
      {"floor.tgkill", "tgkill + ack", "lw 2 dt 2 lc rgb '#000000'"},
      {"floor.membarrier.busy", "membarrier (busy CPUs)", "lw 2 dt 5 lc rgb '#7f7f7f'"},
      {"peer.dpdk.remote_launch", "DPDK remote launch", "lw 2 dt 4 lc rgb '#8c564b'"},
      {"floor.eventfd_epoll", "eventfd ping-pong (epoll)", "lw 2 dt 2 lc rgb '#d62728'"},
      {"peer.libuv.async_roundtrip", "libuv uv_async_send", "lw 2 dt 4 lc rgb '#e377c2'"},
  };

  struct chart {
    std::string file;
    std::string script;
  };
  const std::vector<chart> charts = {
      {"latency-single.png",
       distribution_chart(r, dir + "/latency-single.png",
                          "call_function_single with wait, percpu engine, per idle mode", single)},
      {"latency-on-each-cpu.png",
       distribution_chart(
           r, dir + "/latency-on-each-cpu.png",
           fmt::format("on_each_cpu with wait, {} CPUs, both engines", r.machine.cores), each)},
      {"latency-attached.png",
       distribution_chart(r, dir + "/latency-attached.png",
                          "call_function_single with wait to an attached host, percpu engine",
                          attached)},
      {"scaling-on-each-cpu.png", scaling_chart(r, dir + "/scaling-on-each-cpu.png", false)},
      {"scaling-many-throughput.png", scaling_chart(r, dir + "/scaling-many-throughput.png", true)},
  };
  FILE* gp = popen("gnuplot", "w");
  if (gp == nullptr) {
    std::fprintf(stderr, "plot: cannot start gnuplot; skipping --plot\n");
    return written;
  }
  std::fprintf(gp, "set terminal pngcairo size 960,540 font 'sans,10' noenhanced\n");
  std::vector<std::string> planned;
  for (const chart& c : charts) {
    if (c.script.empty()) continue;
    std::fputs(c.script.c_str(), gp);
    std::fputs(
        "unset logscale\nunset title\nunset xtics\nset xtics\nunset ytics\nset ytics\nset output\n",
        gp);
    planned.push_back(dir + "/" + c.file);
  }
  const int status = pclose(gp);
  if (status != 0) std::fprintf(stderr, "plot: gnuplot exited with status %d\n", status);
  for (const std::string& f : planned) {
    std::error_code size_ec;
    if (std::filesystem::file_size(f, size_ec) > 0 && !size_ec) written.push_back(f);
  }
  return written;
}

}  // namespace xcall::bench
