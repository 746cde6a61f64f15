// thread_context.hpp — the calling thread's CPU context: the CPU it hosts (or
// runs calls for, as a proxy), its soft interrupt mask, and the doorbell mask
// that keeps the doorbell signal's handler out of the library. Private.
//
// The doorbell signal handler (signal_doorbell.cpp) interrupts this same
// thread at any instruction, so the fields it reads or writes are lock-free
// atomics: relaxed, because handler and thread are one thread, with
// std::atomic_signal_fence where their order against plain host-only state
// matters (the handler must see the mask raised before the library touches
// that state, and lowered only after it is done with it).
#pragma once

#include <atomic>

namespace xcall::detail {

struct cpu_state;
class target_nudge;

/// How deep proxies may nest on one thread: a proxied function that waits
/// for another parked CPU proxies that one too (its own parked CPU included).
inline constexpr unsigned kMaxProxyDepth = 8;

struct thread_context {
  /// The CPU this thread acts as: the one it hosts, or, while it runs a
  /// parked host's calls as a proxy, that host's CPU.
  std::atomic<cpu_state*> host{nullptr};
  /// While proxying: what `host` was before each proxy began, oldest first
  /// (the CPU this thread really hosts, then each CPU it proxies for and
  /// left to proxy another; nullptr where it acted as no CPU). The thread
  /// holds every one of them: their waits run their calls too (proxy.cpp).
  cpu_state* held[kMaxProxyDepth] = {};
  unsigned proxy_depth = 0;           ///< proxies in progress on this thread
  cpu_state* parked = nullptr;        ///< the CPU this thread hosts, while parked
  cpu_state* loop_waiting = nullptr;  ///< the CPU of a live announcing loop_wait
  /// Parked proxy CPUs whose calls a no-wait sender on this thread could
  /// not run at once because it was inside an irq_guard (help_parked()):
  /// the outermost guard's end runs them, as a pending IPI is taken when
  /// interrupts come back on (run_owed_help(), proxy.cpp). Past
  /// kMaxOwedHelp, `owed_help_overflow` makes that end look at every CPU of
  /// the listed CPUs' domains.
  static constexpr unsigned kMaxOwedHelp = 64;
  cpu_state* owed_help[kMaxOwedHelp] = {};
  unsigned owed_help_count = 0;
  bool owed_help_overflow = false;
  /// The innermost wait for a descriptor in progress on this thread; each
  /// links to the one it runs inside (nudge.hpp).
  target_nudge* waits = nullptr;
  std::atomic<unsigned> irq_depth{0};         ///< live irq_guards
  std::atomic<unsigned> doorbell_masked{0};   ///< library sections in progress
  std::atomic<bool> doorbell_pending{false};  ///< a handler deferred its run

  cpu_state* current() const noexcept { return host.load(std::memory_order_relaxed); }
  bool irqs_off() const noexcept { return irq_depth.load(std::memory_order_relaxed) != 0; }
  bool proxying() const noexcept { return proxy_depth != 0; }
  /// Whether this thread acts as `c` now or holds it beneath a proxy.
  bool acts_for(const cpu_state* c) const noexcept {
    if (current() == c) return true;
    for (unsigned i = 0; i < proxy_depth; ++i) {
      if (held[i] == c) return true;
    }
    return false;
  }
};

/// This thread's context. Defined in cpu.cpp.
thread_context& this_thread_context() noexcept;

/// Raises the doorbell mask. Single writer (this thread; a handler restores
/// what it changes), so load + store, not a read-modify-write.
inline void raise_doorbell_mask(thread_context& ctx) noexcept {
  ctx.doorbell_masked.store(ctx.doorbell_masked.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
  // The handler must see the mask before we touch host-only state.
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

/// Lowers it; returns the new depth. Runs nothing deferred.
inline unsigned lower_doorbell_mask(thread_context& ctx) noexcept {
  // Done with host-only state before the handler may run again.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const unsigned depth = ctx.doorbell_masked.load(std::memory_order_relaxed) - 1;
  ctx.doorbell_masked.store(depth, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return depth;
}

/// While it lives, a doorbell signal that arrives on this thread only sets
/// doorbell_pending; the last mask to end runs the deferred doorbell (the
/// kernel's local_irq_save/restore around its own per-CPU work). Every piece
/// of the library that touches a host's per-CPU state on the host's thread
/// holds one. Nestable.
class doorbell_mask {
 public:
  doorbell_mask() noexcept : ctx_(this_thread_context()) { raise_doorbell_mask(ctx_); }
  ~doorbell_mask();  // signal_doorbell.cpp: may run the deferred doorbell
  doorbell_mask(const doorbell_mask&) = delete;
  doorbell_mask& operator=(const doorbell_mask&) = delete;

 private:
  thread_context& ctx_;
};

}  // namespace xcall::detail
