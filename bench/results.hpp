// results.hpp — what one run measured, and how it was configured. Every
// measuring file adds to a `results`; report.cpp and plot.cpp only read it.
//
// Identifiers (measurement::id) are dotted paths, stable across runs so that
// JSON files can be compared:
//   floor.cacheline  floor.futex  floor.eventfd  floor.eventfd_epoll  floor.tgkill
//   floor.membarrier.busy  floor.membarrier.idle
//   peer.mutex_queue.roundtrip  peer.mutex_queue.async_1  peer.mutex_queue.async_all
//   peer.lockfree_list.async_1  peer.lockfree_list.async_all
//   peer.dpdk.remote_launch  peer.dpdk.mp_launch_call_main  peer.dpdk.mp_launch_skip_main
//   peer.libuv.async_roundtrip
//   xcall.<engine>.<mode>.single_wait | on_each_cpu | many_wait | async_1 | async_all
// with <engine> percpu|classic and <mode> poll|adaptive|adaptive_cold|sleep;
// and the attached hosts of attached_cases.cpp (percpu only):
//   xcall.percpu.attached_poll.single_wait       poll delivery, host polls all the time
//   xcall.percpu.attached_poll_20us.single_wait  poll delivery, host polls every 20 µs
//   xcall.percpu.attached_signal.single_wait     signal delivery, host busy, never polls
//   xcall.percpu.attached_proxy.single_wait      proxy, host parked in a blocking read()
//   xcall.percpu.attached_fd.single_wait         fd delivery, host blocked in epoll_wait
// and the senders' system calls per burst of no-wait calls (burst_row ids):
//   xcall.percpu.attached_fd.burst_blocked   fd delivery, host blocked in epoll_wait
//   xcall.percpu.attached_fd.burst_running   fd delivery, host runs its own code
//   peer.libuv.burst_blocked  peer.libuv.burst_running   uv_async_send, the same two hosts
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "stats.hpp"

namespace xcall::bench {

struct config {
  bool quick = false;
  std::size_t latency_samples = 20000;  ///< per latency series
  double max_series_seconds = 4.0;      ///< a latency series stops early past this
  double throughput_seconds = 0.5;      ///< producers run this long per trial
  unsigned trials = 3;                  ///< throughput: the best of this many trials
  unsigned scale_max_cpus = 256;        ///< scaling sweep: 2, 4, ... up to this
  std::size_t scale_samples = 3000;     ///< on_each_cpu samples per sweep point
  double scale_seconds = 1.0;           ///< time cap per sweep figure
  unsigned fan_max_cpus = 256;          ///< fan-out sweep (fan_out.cpp): 2, 4, ... up to this
  std::size_t fan_samples = 300;        ///< samples per fan-out series
  double fan_seconds = 20;              ///< time cap per fan-out domain size
  std::size_t dpdk_samples = 10000;
  bool dpdk = true;
  /// --smoke: the tiny run of the `bench` CTest; checks that every section
  /// runs and every call ran as often as issued, figures mean nothing.
  bool smoke = false;
  std::vector<std::string> sections;  ///< empty: all
  std::string filter;                 ///< xcall figures: only ids containing it
  bool wants(const std::string& section) const;
  bool selected(const std::string& figure_id) const {
    return filter.empty() || figure_id.find(filter) != std::string::npos;
  }
};

enum class figure_kind { latency, throughput };

struct measurement {
  std::string id;
  std::string label;  ///< what was measured, for tables
  figure_kind kind = figure_kind::latency;
  bool available = true;  ///< false: not measured; `note` says why
  std::string note;       ///< how, or why not
  summary lat;            ///< latency: nanoseconds per operation (round trip)
  double rate = 0;        ///< throughput: operations per second
  std::vector<std::pair<double, double>> curve;  ///< latency: (quantile, ns), for charts
  /// Poll-mode latency figures: p50 of a cache-line ping-pong measured just
  /// before this series, on the same cores (0: none). The hypervisor may move
  /// vCPUs between runs and during one, which moves the floor itself; a
  /// paired floor keeps the ratio honest.
  double paired_floor_ns = 0;
  /// What the paired floor is: the id of the floor or figure it re-measures
  /// (floor.cacheline for the poll-mode rows; floor.tgkill, or an xcall
  /// figure, for the attached hosts). The cache-line drift warning looks at
  /// floor.cacheline pairs only.
  std::string paired_floor_id = "floor.cacheline";
  /// Async figures: the bare lock-free list's rate with the same producers,
  /// measured just before this figure (0: none), for the same reason.
  double paired_floor_rate = 0;
};

/// Bursts of no-wait calls (or uv_async_send messages) from one thread to a
/// host that runs them all before the next burst: what the sender paid in
/// system calls (attached_cases.cpp, uv_peer.cpp).
struct burst_row {
  std::string id;
  std::string label;  ///< the sender and the host
  bool available = true;
  std::string note;  ///< how, or why not
  /// The host blocks in its event loop between bursts (else it runs its own
  /// code): one write per burst is the floor, instead of none.
  bool host_blocked = false;
  unsigned bursts = 0;
  unsigned calls_per_burst = 0;
  /// The library's count of the doorbell writes (cpu_stats::doorbell_fd_writes),
  /// over all bursts; -1: not counted (libuv).
  std::int64_t doorbell_writes = -1;
  /// The most doorbell writes one whole burst cost (one the host took in a
  /// single wake-up).
  std::uint64_t max_writes_in_a_burst = 0;
  /// Bursts the host took in more than one wake-up: it ran part of the burst
  /// and waited in its loop again before the sender had queued the rest (the
  /// sender was preempted, or slow). Each of those waits may cost one write.
  unsigned split_bursts = 0;
  /// Writes beyond one per wait of the host during a burst: 0 unless the
  /// doorbell wrote more than it needed to.
  std::uint64_t excess_writes = 0;
  /// Futex wakes the library paid (cpu_stats::doorbells_rung); -1: not counted.
  std::int64_t futex_wakes = -1;
  /// The kernel's count of the sending thread's write-class system calls over
  /// all bursts (sys.hpp); -1: unavailable.
  std::int64_t sender_writes = -1;
};

struct scaling_point {
  std::string engine;  ///< percpu | classic
  unsigned cpus = 0;
  summary on_each_cpu;          ///< wait latency, ns
  double many_calls_per_s = 0;  ///< call_function_many(all, no wait) completed calls/s
  double many_runs_per_s = 0;   ///< function runs/s (calls x targets)
  unsigned callers = 0;
  double each_wakes = 0;  ///< on_each_cpu: futex wakes per target CPU per call
  double many_wakes = 0;  ///< call_function_many: futex wakes per target CPU per call
};

/// One point of the fan-out sweep (fan_out.cpp): one engine, one domain
/// size, the wake tree on or off (off: the caller futex-wakes every sleeping
/// target itself, one after another). Every call goes to all CPUs, each of
/// them asleep before the call.
struct fan_out_point {
  std::string engine;  ///< percpu | classic
  unsigned cpus = 0;
  bool wake_tree = true;
  summary many_return;       ///< call_function_many(all, no wait): the caller's time to return, ns
  summary each;              ///< on_each_cpu with wait, ns
  std::uint64_t calls = 0;   ///< calls of both kinds, warm-up included (the wake counts' divisor)
  double caller_wakes = 0;   ///< futex wakes per call made by the caller (rung - relayed)
  double relayed_wakes = 0;  ///< futex wakes per call made by woken CPUs (wakes_relayed)
  /// The heap's depth, floor(log2 n) + 1: the longest chain of sequential
  /// wakes when every CPU sleeps. Computed from the shape, not measured.
  unsigned levels = 0;
};

struct alloc_row {
  std::string engine;
  std::string caller;  ///< "outside" | "attached CPU"
  std::string call;
  std::uint64_t first_call = 0;  ///< allocations made by the first such call
  double per_call = 0;           ///< allocations per call once warm
  std::size_t calls = 0;
};

struct memory_row {
  std::string what;
  unsigned cpus = 0;
  long rss_before_kib = 0;
  long rss_after_kib = 0;
  double bytes_per_cpu = 0;
  double construct_ms = -1;  ///< time to build the domain (threads started); -1: not timed
  double destroy_ms = -1;    ///< time to destroy it (threads joined); -1: not timed
};

struct machine_info {
  std::string cpu_model;
  unsigned cores = 0;        ///< host CPUs this process may use
  unsigned online_cpus = 0;  ///< host CPUs online
  std::string kernel;
  bool virtualized = false;
  std::string hypervisor;  ///< from lscpu-like sources, may be empty
  std::string git_revision;
  std::string compiler;
  std::string date;         ///< UTC, ISO 8601
  std::string load_before;  ///< /proc/loadavg at start
  std::string load_after;
  std::string clock;
  double clock_read_ns = 0;
};

struct results {
  machine_info machine;
  config cfg;
  std::vector<measurement> figures;
  std::vector<scaling_point> scaling;
  std::vector<alloc_row> allocations;
  std::vector<memory_row> memory;
  std::vector<burst_row> bursts;
  std::vector<fan_out_point> fan_out;
  std::vector<std::string> warnings;  ///< sanity checks that failed (lost calls, stalls)
  /// Calls that did not run exactly as often as issued (also in warnings):
  /// xcall-bench exits non-zero when there is any, naming each case.
  std::vector<std::string> count_errors;
  double seconds = 0;  ///< wall time of the run

  const measurement* find(const std::string& id) const;
  measurement& add(measurement m);
};

/// Samples of the cache-line ping-pong floor (floors.cpp), for pairing.
std::vector<double> cacheline_samples(const config& cfg, std::size_t samples);
/// Samples of the tgkill + ack floor (floors.cpp), for pairing; empty when
/// the signal handler cannot be installed.
std::vector<double> tgkill_samples(const config& cfg, std::size_t samples);
/// Samples of an eventfd ping-pong whose two sides block in epoll_wait
/// (floors.cpp), for pairing; `gap_ns` before each round trip. Empty when
/// eventfd or epoll fails.
std::vector<double> eventfd_epoll_samples(const config& cfg, std::size_t samples, double gap_ns);
/// One trial of the bare lock-free list with `producers` producers
/// (peers.cpp), calls per second, for pairing.
double lockfree_rate(const config& cfg, unsigned producers);

// The measuring sections (one file each).
void run_floors(const config& cfg, results& out);         // floors.cpp
void run_floor_recheck(const config& cfg, results& out);  // floors.cpp: at the end
void run_peers(const config& cfg, results& out);          // peers.cpp
void run_dpdk(const config& cfg, results& out);           // dpdk_peer.cpp
void run_xcall(const config& cfg, results& out);          // xcall_cases.cpp
void run_attached(const config& cfg, results& out);       // attached_cases.cpp
void run_scaling(const config& cfg, results& out);        // scaling.cpp
void run_footprint(const config& cfg, results& out);      // footprint.cpp
void run_fan_out(const config& cfg, results& out);        // fan_out.cpp

/// libuv's uv_async_send (uv_peer.cpp; unavailable rows when libuv was not
/// built in): the round trip to a loop thread blocked in epoll_wait, whose
/// callback answers a caller that spins for `caller_spin_ns` then sleeps on
/// a futex (as xcall's waiting caller does), with `gap_ns` before each send;
/// and the sender's write(2)s for `bursts` bursts of `per_burst` messages to a
/// loop blocked in epoll_wait and to one running its own code.
measurement libuv_async_roundtrip(const config& cfg, double caller_spin_ns, double gap_ns);
std::vector<burst_row> libuv_bursts(unsigned bursts, unsigned per_burst, double settle_ns);

/// Progress on stderr ("[floors] cache-line ping-pong ... 0.52 us").
void progress(const char* section, const std::string& text);

}  // namespace xcall::bench
