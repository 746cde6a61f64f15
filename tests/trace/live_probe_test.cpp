// live_probe_test.cpp — the probes fire where the events happen, as many
// times as they happen, with the right arguments. Through the kernel's
// tracefs uprobe events: every site of every xcall probe in trace_workload
// (sdt_notes.hpp) becomes an event p:xcall_test_<pid>/<probe>_<i>, with its
// arguments fetched as the note describes them; the events are enabled in a
// trace instance of our own, trace_workload runs a known number of calls as
// a child, and the instance's buffer is counted against the number of calls
// and against the counters the workload prints (the stats counters mark the
// same places as the probes).
//
// Skipped, with the reason, where the machine does not allow it: not root,
// no tracefs (and it cannot be mounted), no uprobe events in the kernel, a
// kernel that refuses the events (lockdown). Never failed for that.
//
// It fails if a probe does not fire, fires too often, or passes a wrong
// argument (a CPU, a kind, a count).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "sdt_notes.hpp"

namespace {

using xcall_trace_test::arg_size;
using xcall_trace_test::read_sdt_sites;
using xcall_trace_test::run_command;
using xcall_trace_test::sdt_site;

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// Writes `text` to a tracefs file; appends (uprobe_events must never be
/// truncated: that would remove other users' events). Returns errno or 0.
int write_file(const std::string& path, const std::string& text, bool append = true) {
  // open(2), not fopen: glibc's append mode seeks, which tracefs refuses.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int write_error = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
  ::close(fd);
  return write_error;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// x86-64 register names as uprobe fetchargs know them (pt_regs).
std::optional<std::string> uprobe_register(std::string r) {
  static const std::map<std::string, std::string> legacy = {
      {"ax", "ax"}, {"bx", "bx"}, {"cx", "cx"}, {"dx", "dx"}, {"si", "si"},
      {"di", "di"}, {"bp", "bp"}, {"sp", "sp"}, {"ip", "ip"}};
  if (r.size() >= 2 && r[0] == 'r' && std::isdigit(static_cast<unsigned char>(r[1]))) {
    while (!r.empty() && (r.back() == 'd' || r.back() == 'w' || r.back() == 'b')) r.pop_back();
    return r;  // r8..r15
  }
  if (r.size() == 3 && (r[0] == 'r' || r[0] == 'e')) r = r.substr(1);  // rax, eax
  if (r.size() == 3 && r[2] == 'l') r = r.substr(0, 2);                // sil, dil, bpl
  if (r.size() == 2 && r[1] == 'l') r = std::string(1, r[0]) + "x";    // al
  const auto it = legacy.find(r);
  if (it == legacy.end()) return std::nullopt;
  return it->second;
}

/// One sdt argument ("-4@%edi", "8@16(%rbx)", "4@$1") as a uprobe fetcharg
/// ("%di:s32", "+16(%bx):u64", "\1:u32"), or nothing when the form is not
/// one we translate (then the site's arguments are not fetched).
std::optional<std::string> fetcharg(const std::string& arg) {
#if defined(__x86_64__)
  const int size = arg_size(arg);
  const std::string where = arg.substr(arg.find('@') + 1);
  const std::string type =
      std::string(size < 0 ? "s" : "u") + std::to_string(8 * (size < 0 ? -size : size));
  if (where.size() > 1 && where[0] == '%') {  // a register
    const auto r = uprobe_register(where.substr(1));
    if (r) return "%" + *r + ":" + type;
  } else if (where.size() > 1 && where[0] == '$') {  // a constant
    if (where.find_first_not_of("-0123456789", 1) == std::string::npos) {
      return "\\" + where.substr(1) + ":" + type;
    }
  } else if (const std::size_t open = where.find("(%");
             open != std::string::npos && where.back() == ')' &&
             where.find_first_not_of("-0123456789") == open) {  // [offset](%reg)
    const auto r = uprobe_register(where.substr(open + 2, where.size() - open - 3));
    const long off = open == 0 ? 0 : std::stol(where.substr(0, open));
    if (r) return (off < 0 ? "" : "+") + std::to_string(off) + "(%" + *r + "):" + type;
  }
#else
  (void)arg;
#endif
  return std::nullopt;
}

/// The file offset of a link-time address, from the program headers.
std::optional<std::uint64_t> file_offset(const std::string& file, std::uint64_t address) {
  std::istringstream in(run_command("readelf -lW '" + file + "' 2>/dev/null"));
  for (std::string line; std::getline(in, line);) {
    // LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
    std::istringstream words(line);
    std::string type, offset, vaddr, paddr, filesz;
    if (!(words >> type >> offset >> vaddr >> paddr >> filesz) || type != "LOAD") continue;
    const std::uint64_t off = std::stoull(offset, nullptr, 16);
    const std::uint64_t va = std::stoull(vaddr, nullptr, 16);
    const std::uint64_t size = std::stoull(filesz, nullptr, 16);
    if (address >= va && address < va + size) return address - va + off;
  }
  return std::nullopt;
}

/// One event read back from the trace buffer.
struct event {
  std::string probe;
  std::vector<std::uint64_t> args;  ///< empty when the site's were not fetched
};

/// The tracefs session: our uprobe events and our trace instance. The
/// destructor removes everything it made, whatever happened.
class uprobe_session {
 public:
  /// Empty when it is ready; otherwise the reason to skip.
  std::string open() {
    if (::geteuid() != 0) return "not root: uprobe events need root";
    for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
      if (exists(std::string(dir) + "/uprobe_events")) {
        root_ = dir;
        break;
      }
    }
    if (root_.empty() && exists("/sys/kernel/tracing") && !exists("/sys/kernel/tracing/events")) {
      if (::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
        return std::string("no tracefs, and mounting it at /sys/kernel/tracing failed: ") +
               std::strerror(errno);
      }
      mounted_ = true;
      if (exists("/sys/kernel/tracing/uprobe_events")) root_ = "/sys/kernel/tracing";
    }
    if (root_.empty()) {
      return exists("/sys/kernel/tracing/events")
                 ? "the kernel has no uprobe events (CONFIG_UPROBE_EVENTS)"
                 : "no tracefs at /sys/kernel/tracing";
    }
    group_ = "xcall_test_" + std::to_string(::getpid());
    return {};
  }

  /// Defines one event; returns errno (0 on success).
  int add(const std::string& name, const std::string& definition) {
    const int e =
        write_file(root_ + "/uprobe_events", "p:" + group_ + "/" + name + " " + definition + "\n");
    if (e == 0) names_.push_back(name);
    return e;
  }

  std::string error_log() const { return read_file(root_ + "/error_log"); }

  /// A trace instance of our own (its own buffer), with our events enabled.
  int enable() {
    instance_ = root_ + "/instances/" + group_;
    if (::mkdir(instance_.c_str(), 0755) != 0) {
      const int e = errno;
      instance_.clear();
      return e;
    }
    (void)write_file(instance_ + "/buffer_size_kb", "8192", false);
    return write_file(instance_ + "/events/" + group_ + "/enable", "1", false);
  }

  void disable() {
    if (!instance_.empty())
      (void)write_file(instance_ + "/events/" + group_ + "/enable", "0", false);
  }

  std::string trace() const { return read_file(instance_ + "/trace"); }

  /// Hits per event name, from uprobe_profile (all processes).
  std::map<std::string, std::uint64_t> hits() const {
    std::map<std::string, std::uint64_t> out;
    // "  <file> <event> <hits>" (older kernels add a column of misses)
    std::istringstream in(read_file(root_ + "/uprobe_profile"));
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string file, name;
      std::uint64_t n = 0;
      if (words >> file >> name >> n) out[name] = n;
    }
    return out;
  }

  const std::string& group() const { return group_; }

  ~uprobe_session() {
    disable();
    if (!instance_.empty()) ::rmdir(instance_.c_str());
    for (const std::string& name : names_) {
      (void)write_file(root_ + "/uprobe_events", "-:" + group_ + "/" + name + "\n");
    }
    if (mounted_) ::umount("/sys/kernel/tracing");
  }

 private:
  std::string root_;
  std::string group_;
  std::string instance_;
  std::vector<std::string> names_;
  bool mounted_ = false;
};

/// What the workload printed: "name value" lines.
std::map<std::string, std::uint64_t> parse_totals(const std::string& out) {
  std::map<std::string, std::uint64_t> totals;
  std::istringstream in(out);
  for (std::string name; in >> name;) in >> totals[name];
  return totals;
}

struct scenario {
  const char* name;
  const char* args;  ///< trace_workload's arguments
};

class LiveProbeTest : public ::testing::TestWithParam<scenario> {
 protected:
  /// Attaches to every site, runs the workload, reads the events back.
  /// Sets skip_ instead when the machine does not allow it.
  void run_traced(const std::string& args) {
    if (!XCALL_TRACE_BUILT) {
      skip_ = "XCALL_TRACE is off in this build: no probes to attach to";
      return;
    }
    skip_ = session_.open();
    if (!skip_.empty()) return;
    const std::string file = XCALL_TRACE_PROBE_FILE;
    const auto sites = read_sdt_sites(file);
    ASSERT_FALSE(sites.empty()) << "no xcall probes in " << file;
    std::map<std::string, std::string> probe_of;  // event name -> probe
    std::map<std::string, bool> fetched;
    for (std::size_t i = 0; i < sites.size(); ++i) {
      const sdt_site& s = sites[i];
      const auto offset = file_offset(file, s.location);
      ASSERT_TRUE(offset.has_value())
          << s.name << ": no LOAD segment holds 0x" << std::hex << s.location;
      std::ostringstream def;
      def << file << ":0x" << std::hex << *offset;
      std::string fetch;
      bool all = true;
      for (std::size_t a = 0; a < s.args.size(); ++a) {
        const auto f = fetcharg(s.args[a]);
        if (!f) all = false;
        fetch += " a" + std::to_string(a) + "=" + f.value_or("");
      }
      const std::string name = s.name + "_" + std::to_string(i);
      int e = session_.add(name, def.str() + (all ? fetch : ""));
      if (e != 0 && all) e = session_.add(name, def.str());  // an old kernel: no args
      if (e == EPERM || e == EACCES) {
        skip_ = std::string("the kernel refuses uprobe events: ") + std::strerror(e);
        return;
      }
      ASSERT_EQ(e, 0) << "uprobe event " << name << " " << def.str() << fetch << ": "
                      << std::strerror(e) << "\n"
                      << session_.error_log();
      probe_of[name] = s.name;
      fetched[name] = all;
    }
    const int e = session_.enable();
    if (e == EPERM || e == EACCES) {
      skip_ = std::string("cannot enable uprobe events: ") + std::strerror(e);
      return;
    }
    ASSERT_EQ(e, 0) << "enabling the events: " << std::strerror(e);

    int status = -1;
    const std::string out =
        run_command(std::string("'") + XCALL_TRACE_WORKLOAD + "' " + args, &status);
    session_.disable();
    ASSERT_EQ(status, 0) << "trace_workload " << args << " failed:\n" << out;
    totals_ = parse_totals(out);

    // "<comm>-<tid> [cpu] <flags> <time>: <event>: (0x...) a0=1 a1=2"
    std::istringstream in(session_.trace());
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      const std::size_t at = line.find(": (0x");
      if (at == std::string::npos) continue;
      const std::size_t start = line.rfind(' ', at);
      const auto it = probe_of.find(line.substr(start + 1, at - start - 1));
      if (it == probe_of.end()) continue;
      event ev{it->second, {}};
      if (fetched[it->first]) {
        std::istringstream words(line.substr(line.find(')', at) + 1));
        for (std::string w; words >> w;) {
          const std::size_t eq = w.find('=');
          if (w[0] == 'a' && eq != std::string::npos) {
            ev.args.push_back(static_cast<std::uint64_t>(std::stoll(w.substr(eq + 1))));
          }
        }
      }
      events_.push_back(ev);
      ++count_[ev.probe];
    }
    for (const auto& [probe, n] : count_) {
      std::printf("xcall:%-20s %6llu events%s\n", probe.c_str(), static_cast<unsigned long long>(n),
                  all_fetched(probe) ? ", arguments fetched" : "");
    }
    // Nothing lost: the buffer holds every hit the kernel counted.
    std::map<std::string, std::uint64_t> hits_per_probe;
    for (const auto& [name, n] : session_.hits()) {
      const std::string prefix = session_.group() + "/";
      const std::string event_name = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
      const auto it = probe_of.find(event_name);
      if (it != probe_of.end()) hits_per_probe[it->second] += n;
    }
    for (const auto& [probe, n] : hits_per_probe) {
      EXPECT_EQ(count_[probe], n) << "xcall:" << probe << ": events in the buffer vs hits";
    }
  }

  /// Events of `probe` whose argument `i` is `value` (fetched ones only).
  std::uint64_t count_where(const std::string& probe, std::size_t i, std::uint64_t value) const {
    std::uint64_t n = 0;
    for (const event& e : events_) {
      if (e.probe == probe && i < e.args.size() && e.args[i] == value) ++n;
    }
    return n;
  }
  /// Whether every event of `probe` had its arguments fetched.
  bool all_fetched(const std::string& probe) const {
    for (const event& e : events_) {
      if (e.probe == probe && e.args.empty()) return false;
    }
    return true;
  }
  std::uint64_t count(const std::string& probe) const {
    const auto it = count_.find(probe);
    return it == count_.end() ? 0 : it->second;
  }
  std::uint64_t total(const std::string& name) const {
    const auto it = totals_.find(name);
    return it == totals_.end() ? ~std::uint64_t{0} : it->second;
  }

  uprobe_session session_;
  std::string skip_;
  std::vector<event> events_;
  std::map<std::string, std::uint64_t> count_;
  std::map<std::string, std::uint64_t> totals_;
};

constexpr unsigned kCalls = 50;

// Owned CPUs that sleep when idle: n single calls to CPU 1 and n many-calls
// to {0, 1} from an outside thread, then CPU 1 down and up.
class LiveOwnedTest : public LiveProbeTest {};

TEST_P(LiveOwnedTest, CountsAndArguments) {
  run_traced(std::string("owned ") + GetParam().args + " " + std::to_string(kCalls));
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  const std::uint64_t calls = 3 * kCalls;  // n to CPU 1, n to each of 0 and 1
  ASSERT_EQ(total("runs"), calls);
  EXPECT_EQ(count("csd_queue_cpu"), calls);
  EXPECT_EQ(count("csd_function_entry"), calls);
  EXPECT_EQ(count("csd_function_exit"), calls);
  EXPECT_EQ(total("calls_run"), calls);
  // The host's own counters mark the same places as the probes.
  EXPECT_EQ(count("doorbell_saved"), total("doorbells_saved"));
  // After the counters were read, ending the domain wakes each host once
  // more (its exit request) and takes both CPUs offline.
  EXPECT_GE(count("doorbell_ring"), total("doorbells_rung"));
  EXPECT_LE(count("doorbell_ring"), total("doorbells_rung") + 2);
  EXPECT_GE(count("host_sleep"), total("sleeps"));
  EXPECT_LE(count("host_sleep"), total("sleeps") + 2);
  EXPECT_EQ(count("host_wake"), count("host_sleep"));
  // Every call reached a sleeping host by a ring or a polling one for free.
  EXPECT_GE(count("doorbell_ring") + count("doorbell_saved"), 2 * kCalls);
  EXPECT_EQ(count("cpu_online"), 3u);   // 0 and 1 at the start, 1 again
  EXPECT_EQ(count("cpu_offline"), 3u);  // 1 by cpu_down, 0 and 1 at the end
  EXPECT_EQ(count("proxy_run"), 0u);
  EXPECT_EQ(count("stall"), 0u);
  // Arguments: which CPU each call was queued to and ran on.
  if (all_fetched("csd_queue_cpu")) {
    EXPECT_EQ(count_where("csd_queue_cpu", 0, 1), 2 * kCalls);
    EXPECT_EQ(count_where("csd_queue_cpu", 0, 0), kCalls);
  }
  if (all_fetched("csd_function_entry") && all_fetched("csd_function_exit")) {
    EXPECT_EQ(count_where("csd_function_entry", 2, 1), 2 * kCalls);
    EXPECT_EQ(count_where("csd_function_exit", 2, 0), kCalls);
    // func and csd: the same function everywhere, never a null csd (no
    // local runs here); the queue's func is the entry's.
    std::uint64_t func = 0;
    for (const event& e : events_) {
      if (e.probe != "csd_function_entry" && e.probe != "csd_queue_cpu") continue;
      if (e.args.size() < 3) continue;  // a site whose arguments were not fetched
      const std::uint64_t f = e.probe == "csd_queue_cpu" ? e.args[1] : e.args[0];
      const std::uint64_t csd = e.probe == "csd_queue_cpu" ? e.args[2] : e.args[1];
      if (func == 0) func = f;
      EXPECT_EQ(f, func) << e.probe;
      EXPECT_NE(csd, 0u) << e.probe;
    }
  }
  if (all_fetched("doorbell_ring")) {
    EXPECT_EQ(count_where("doorbell_ring", 1, 0), count("doorbell_ring")) << "all futex wakes";
  }
  if (all_fetched("cpu_offline")) {
    EXPECT_EQ(count_where("cpu_offline", 0, 1), 2u);
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, LiveOwnedTest,
                         ::testing::Values(scenario{"percpu", "percpu"},
                                           scenario{"classic", "classic"}),
                         [](const auto& p) { return std::string(p.param.name); });

// Attached CPUs: signal, fd and proxy delivery, and a stall.
class LiveAttachedTest : public LiveProbeTest {};

TEST_F(LiveAttachedTest, DoorbellsProxyAndStall) {
  run_traced("attached " + std::to_string(kCalls));
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  const std::uint64_t calls = 3 * kCalls + 1;
  ASSERT_EQ(total("runs"), calls);
  EXPECT_EQ(count("csd_queue_cpu"), calls);
  EXPECT_EQ(count("csd_function_entry"), calls);
  EXPECT_EQ(count("csd_function_exit"), calls);
  EXPECT_EQ(count("doorbell_saved"), total("doorbells_saved"));
  EXPECT_EQ(count("cpu_online"), 4u);
  EXPECT_EQ(count("cpu_offline"), 4u);
  // Every proxied call, on CPU 2, by the outside caller (home = no_cpu).
  EXPECT_EQ(total("proxy_runs"), kCalls);
  std::uint64_t proxied = 0;
  for (const event& e : events_) {
    if (e.probe != "proxy_run" || e.args.empty()) continue;
    EXPECT_EQ(e.args[0], 0xffffffffu) << "home: an outside thread";
    EXPECT_EQ(e.args[1], 2u) << "borrowed: CPU 2";
    proxied += e.args[2];
  }
  EXPECT_GE(count("proxy_run"), 1u);
  if (all_fetched("proxy_run")) {
    EXPECT_EQ(proxied, total("proxy_runs"));
  }
  // The stall of the call to CPU 3, reported at least once.
  EXPECT_GE(total("stalls_reported"), 1u);
  EXPECT_EQ(count("stall"), total("stalls_reported"));
  if (all_fetched("stall")) {
    // CPU 3's, and maybe others' on a loaded machine (10 ms is short).
    EXPECT_GE(count_where("stall", 0, 3), 1u);
    for (const event& e : events_) {
      if (e.probe == "stall" && e.args.size() == 3) {
        EXPECT_GE(e.args[1], 10'000'000u) << "waited at least the timeout";
      }
    }
  }
  // The doorbells, by kind: futex (none of these hosts sleeps on its state
  // word), signal (CPU 0), fd (CPU 1).
  if (all_fetched("doorbell_ring")) {
    EXPECT_EQ(count_where("doorbell_ring", 1, 0), total("doorbells_rung"));
    EXPECT_EQ(count_where("doorbell_ring", 1, 1), total("signals_sent"));
    EXPECT_EQ(count_where("doorbell_ring", 1, 2), total("doorbell_fd_writes"));
    EXPECT_GE(total("signals_sent"), 1u);
    EXPECT_GE(total("doorbell_fd_writes"), 1u);
  } else {
    EXPECT_EQ(count("doorbell_ring"),
              total("doorbells_rung") + total("signals_sent") + total("doorbell_fd_writes"));
  }
}

}  // namespace
