// classic_engine.hpp — the classic engine's state, all of it: per-caller
// call blocks on one global list (Linux 2.6.38–3.8: call_function_data on
// call_function.queue), each CPU's "a block may name you" flag and walk
// bookkeeping, each caller's block, and the domain's list and hotplug
// barrier. Its code is classic_engine.cpp. Private to the library.
//
// Where it lives: the per-CPU parts are members of cpu_state (the flag on
// the line senders write, the walk bookkeeping on the host's line), the
// per-caller part a member of caller_storage, the per-domain part a
// classic_domain that a domain of the classic engine owns (domain_impl::
// classic_, null for the percpu engine: the drain path's only test).
//
// The list is walked by handlers without its lock while callers add blocks at
// the head and the last handler of a block deletes it, under the lock. A
// block is reused by its caller as soon as it is unlocked, with no grace
// period: a walker may still stand on it. That is safe because (a) blocks are
// never freed while the domain lives, (b) deletion leaves the block's `next`
// intact, so a walker standing on a deleted block continues into the list,
// and re-adding at the head makes it revisit entries rather than skip any,
// and (c) handlers check "my bit set, then refs != 0" before reading the
// function, and a refill writes refs = 0 before the mask.
//
// Ordering (the kernel's barriers, one by one; docs/memory-ordering.md):
//  - caller: refs = 0, func, info (relaxed), then the mask bits with release
//    stores (the kernel's smp_wmb "0 refs visible before mask; func and info
//    before mask"); pairs with the walker's acquire test of its bit.
//  - caller, under the lock: add at the head (release store of head.next,
//    pairs with the walkers' acquire loads of next), then refs = count
//    (release; pairs with the walker's acquire load of refs, the kernel's
//    smp_rmb between the bit test and the refs read).
//  - handler: refs fetch_sub acq_rel: the last decrement sees every other
//    handler's run; its csd release then publishes all of them to the waiter.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "alloc.hpp"
#include "writer_first_rwlock.hpp"
#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"

namespace xcall::detail {

/// A node of the global list; the list head is a bare node.
struct list_node {
  std::atomic<list_node*> next{this};  ///< read by lock-free walkers
  list_node* prev = this;              ///< under the list lock only
};

struct call_block : list_node {
  explicit call_block(cpu_t nr_cpus) : cpumask(nr_cpus) {}

  call_single_data csd;  ///< the lock (csd_lock/unlock) and the owner's copy of func/info
  // Read by handlers while the owner may be refilling the block (no grace
  // period): atomics, ordered by the refs/mask protocol above.
  std::atomic<call_func_t> func{nullptr};
  std::atomic<void*> info{nullptr};
  std::atomic<int> refs{0};
  xcall::cpumask cpumask;  ///< CPUs that still owe a run; each clears its own bit
};

/// The global list and the lock that guards add and delete (not walks).
class call_function_list {
 public:
  /// Under lock(): add at the head.
  void add_head(call_block& block) noexcept {
    list_node* first = head_.next.load(std::memory_order_relaxed);
    // release, not relaxed: a walker may still stand on this block (reuse
    // with no grace period) and follow block.next without passing through
    // head_.next; this store hands it what the lock showed us about `first`
    // (its construction included). Pairs with the acquire in next().
    block.next.store(first, std::memory_order_release);
    block.prev = &head_;
    // release: publishes block.next (and the block) to walkers; pairs with
    // the acquire loads in first()/next().
    head_.next.store(&block, std::memory_order_release);
    first->prev = &block;
  }

  /// Under lock(): unlink, leaving block.next for walkers standing on it.
  void remove(call_block& block) noexcept {
    list_node* next = block.next.load(std::memory_order_relaxed);
    // release: pairs with the walkers' acquire loads, as in add_head().
    block.prev->next.store(next, std::memory_order_release);
    next->prev = block.prev;
  }

  std::mutex& lock() noexcept { return lock_; }

  // Lock-free walk: for (n = first(); !is_end(n); n = next(n)).
  list_node* first() const noexcept {
    // acquire: pairs with the release stores in add_head()/remove().
    return head_.next.load(std::memory_order_acquire);
  }
  static list_node* next(const list_node* node) noexcept {
    // acquire: pairs with the release stores in add_head()/remove().
    return node->next.load(std::memory_order_acquire);
  }
  bool is_end(const list_node* node) const noexcept { return node == &head_; }

 private:
  list_node head_;
  std::mutex lock_;
};

/// A CPU's classic state that senders write: the kernel's call-function
/// IPI, as opposed to the single-call one. On cpu_state's sender line.
struct classic_announcement {
  /// A call block on the global list may name this CPU.
  std::atomic<bool> pending{false};
};

/// A CPU's classic state that only its host (or proxy) touches. On
/// cpu_state's host line.
struct classic_walks {
  unsigned walking = 0;  ///< list walks in progress (a walked function waits)
  bool owed = false;     ///< an announcement not yet walked for
};

/// A caller storage's classic part: its call block, made on first use.
class classic_caller {
 public:
  /// The call block, allocated on first use; nullptr when that fails.
  call_block* block(cpu_t nr_cpus) noexcept {
    if (!block_) block_ = try_make<call_block>(nr_cpus);
    return block_.get();
  }
  /// The block is in flight: unlike a no-wait descriptor, which its target
  /// releases before running the function, a block stays locked while its
  /// functions run, and one of them may be waiting for the caller
  /// (caller_scope).
  bool in_flight() const noexcept { return block_ && block_->csd.in_flight(); }

  bool queued = false;  ///< this call queued the block and may wait on it

 private:
  std::unique_ptr<call_block> block_;
};

/// The domain's classic state: the global list and the barrier a dying CPU
/// raises against callers that may have seen it online (classic_engine.cpp).
struct classic_domain {
  call_function_list list;
  writer_first_rwlock hotplug;
};

}  // namespace xcall::detail
