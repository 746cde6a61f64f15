// host_marks.cpp — the hosts' marks (host_marks.hpp).
//
// Ordering: see the header: relaxed, signal fences on the writer's side,
// the library's run-lock handover for proxies.
#include "host_marks.hpp"

namespace xcall_torture {
namespace {

// Initial-exec TLS of the executable: safe to read in a signal handler.
thread_local xcall::cpu_t t_mine = xcall::no_cpu;
thread_local std::atomic<bool> t_in_region{false};
thread_local std::atomic<bool> t_calling_in_region{false};
thread_local unsigned t_proxy_runs = 0;                 // tool functions run here for another CPU
thread_local std::atomic<std::uint64_t> t_own_runs{0};  // tool functions run here for our CPU

void mark(std::atomic<bool>& flag, bool on) noexcept {
  // The fence keeps the mark on the right side of the code it brackets, as
  // seen by a handler interrupting this thread.
  if (!on) std::atomic_signal_fence(std::memory_order_seq_cst);
  flag.store(on, std::memory_order_relaxed);
  if (on) std::atomic_signal_fence(std::memory_order_seq_cst);
}

}  // namespace

host_marks::host_marks(xcall::cpu_t n)
    : guarded_(std::make_unique<std::atomic<bool>[]>(n)),
      parked_(std::make_unique<std::atomic<unsigned>[]>(n)) {}

void host_marks::claim(xcall::cpu_t cpu) noexcept { t_mine = cpu; }
xcall::cpu_t host_marks::mine() noexcept { return t_mine; }

void host_marks::set_guarded(xcall::cpu_t cpu, bool on) noexcept { mark(guarded_[cpu], on); }
bool host_marks::guarded(xcall::cpu_t cpu) const noexcept {
  return guarded_[cpu].load(std::memory_order_relaxed);
}

void host_marks::set_parked(xcall::cpu_t cpu, bool on) noexcept {
  // Counted, not a flag: entering a region is a safe point, so a function
  // drained there may enter (and leave) a region of its own before the
  // outer one parks; its end must not clear the outer one's mark.
  // Single writer (the host thread): load and store, as the counters of the
  // library.
  std::atomic<unsigned>& depth = parked_[cpu];
  if (!on) std::atomic_signal_fence(std::memory_order_seq_cst);
  depth.store(depth.load(std::memory_order_relaxed) + (on ? 1u : -1u), std::memory_order_relaxed);
  if (on) std::atomic_signal_fence(std::memory_order_seq_cst);
}
bool host_marks::parked(xcall::cpu_t cpu) const noexcept {
  return parked_[cpu].load(std::memory_order_relaxed) != 0;
}

void host_marks::set_in_region(bool on) noexcept { mark(t_in_region, on); }
bool host_marks::in_region() noexcept { return t_in_region.load(std::memory_order_relaxed); }

void host_marks::set_calling_in_region(bool on) noexcept { mark(t_calling_in_region, on); }
void host_marks::enter_run(xcall::cpu_t cpu) noexcept {
  if (cpu != t_mine) ++t_proxy_runs;
}
void host_marks::leave_run(xcall::cpu_t cpu) noexcept {
  if (cpu != t_mine) --t_proxy_runs;
}
bool host_marks::proxying() noexcept { return t_proxy_runs != 0; }

// One RMW: with --delivery signal a handler on this thread may count in the
// middle of the thread's own count (only --delivery fd reads it).
void host_marks::count_own_run() noexcept { t_own_runs.fetch_add(1, std::memory_order_relaxed); }
std::uint64_t host_marks::own_runs() noexcept { return t_own_runs.load(std::memory_order_relaxed); }

bool host_marks::calling_in_region() noexcept {
  return t_calling_in_region.load(std::memory_order_relaxed);
}

}  // namespace xcall_torture
