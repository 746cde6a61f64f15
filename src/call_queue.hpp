// call_queue.hpp — a CPU's queue of call descriptors: a lock-free MPSC list
// (push one, take all), the kernel's `call_single_queue` llist, plus a
// "closed" state for CPUs that are offline. Private to the library.
//
// Any thread may push; only the CPU's host takes, closes and opens. A push to
// a closed queue fails, atomically with the close: that is how a caller that
// raced with cpu_down learns its target is gone instead of queuing work that
// nobody would ever run (the kernel gets the same from stop_machine).
//
// Ordering:
//  - push(): the CAS (seq_cst) publishes the descriptor (func, info, flags,
//    next_) and everything the caller wrote before the call; pairs with the
//    acquire exchange in take_all()/close(). Later pushes' CASes continue the
//    release sequence, so one take sees every descriptor it returns. The CAS
//    also acquires: it reads from open()'s release (or from a push in its
//    release sequence), so a sender sees how the host that opened the queue
//    wants to be reached (cpu_state's delivery fields). Being seq_cst, it
//    is also the sender's store of the doorbell handshake (doorbell.hpp).
//  - empty(): a relaxed peek used only to decide whether to take or sleep;
//    the take itself is what synchronises.
#pragma once

#include <atomic>
#include <cstdint>

#include "csd_ops.hpp"
#include "xcall/csd.hpp"

namespace xcall::detail {

class call_queue {
 public:
  enum class push_result {
    queued,     ///< the list already had work: its host has been told
    was_empty,  ///< first descriptor: the caller must ring the doorbell
    closed,     ///< the CPU is offline: nothing was queued
  };

  /// The queue starts closed: a CPU is offline until its host brings it up.
  call_queue() noexcept = default;

  push_result push(call_single_data& csd) noexcept {
    call_single_data* old = head_.load(std::memory_order_relaxed);
    do {
      if (old == closed_marker()) return push_result::closed;
      csd_ops::next(csd) = old;
      // seq_cst: release publishes the descriptor (pairs with take_all()/
      // close()); acquire pairs with open(). See the file comment. And
      // seq_cst, not only acq_rel: the CAS is also the store of the doorbell
      // handshake, so the sender's load of host_state may follow as a
      // seq_cst load instead of a fence and a load (ring_after_push()).
    } while (!head_.compare_exchange_weak(old, &csd, std::memory_order_seq_cst,
                                          std::memory_order_relaxed));
    // relaxed: a statistic on the line this push just wrote anyway.
    pushed_.fetch_add(1, std::memory_order_relaxed);
    return old == nullptr ? push_result::was_empty : push_result::queued;
  }

  /// Host only. Everything queued, oldest first; nullptr when empty or closed.
  call_single_data* take_all() noexcept {
    call_single_data* head = head_.load(std::memory_order_relaxed);
    // Only the host closes, so a closed queue stays closed under us, and
    // otherwise only pushes change head: the exchange cannot reopen it.
    if (head == nullptr || head == closed_marker()) return nullptr;
    // acquire: pairs with the release CAS in push().
    return reverse(head_.exchange(nullptr, std::memory_order_acquire));
  }

  /// Host only, going offline: takes everything and refuses later pushes.
  call_single_data* close() noexcept {
    // acquire: pairs with the release CAS in push(), as in take_all().
    call_single_data* head = head_.exchange(closed_marker(), std::memory_order_acquire);
    return head == closed_marker() ? nullptr : reverse(head);
  }

  /// Host only, coming online: closed -> empty. release: publishes the
  /// host's set-up (delivery fields) to senders; pairs with push()'s CAS.
  void open() noexcept {
    call_single_data* expected = closed_marker();
    head_.compare_exchange_strong(expected, nullptr, std::memory_order_release,
                                  std::memory_order_relaxed);
  }

  bool empty() const noexcept {
    call_single_data* head = head_.load(std::memory_order_relaxed);
    return head == nullptr || head == closed_marker();
  }
  bool closed() const noexcept { return head_.load(std::memory_order_relaxed) == closed_marker(); }

  /// Descriptors pushed and not yet taken, for diagnostics: exact when
  /// quiescent, approximate while pushes and takes run.
  std::uint64_t length() const noexcept {
    const std::uint64_t taken = taken_.load(std::memory_order_relaxed);
    const std::uint64_t pushed = pushed_.load(std::memory_order_relaxed);
    return pushed > taken ? pushed - taken : 0;
  }

 private:
  static call_single_data* closed_marker() noexcept {
    static call_single_data marker;  // never queued; only its address is used
    return &marker;
  }
  /// Reverses a taken list to FIFO and counts it as taken.
  call_single_data* reverse(call_single_data* lifo) noexcept {
    call_single_data* fifo = nullptr;
    std::uint64_t n = 0;
    for (; lifo != nullptr; ++n) {
      call_single_data* next = csd_ops::next(*lifo);
      csd_ops::next(*lifo) = fifo;
      fifo = lifo;
      lifo = next;
    }
    // relaxed, single writer (the host): a statistic.
    taken_.store(taken_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    return fifo;
  }

  std::atomic<call_single_data*> head_{closed_marker()};
  std::atomic<std::uint64_t> pushed_{0};  ///< senders; same line as head_
  std::atomic<std::uint64_t> taken_{0};   ///< the host; same line, written at take
};

}  // namespace xcall::detail
