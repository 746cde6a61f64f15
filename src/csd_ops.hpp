// csd_ops.hpp — the lock protocol word of call_single_data (the kernel's
// csd_lock / csd_unlock / csd_lock_wait flags). Private to the library.
//
// Layout of flags_ (32 bits, also used as a futex word):
//   bit 0       kLocked   in flight: queued or running, not yet released
//   bit 1       kSync     a waiting call: the target runs func, then releases
//                         (without it: releases, then runs func)
//   bit 2       kSleeper  the owner sleeps until release; the releaser wakes it
//   bits 16-31  waiter    0: the owner sleeps on flags_ itself (futex);
//                         n > 0: the owner hosts CPU n-1 of the domain and
//                         sleeps on that CPU's host state word
//
// Ordering:
//  - unlock() is a release RMW; pairs with the acquire loads of the owner in
//    is_locked()/wait (waiting.cpp) and in call_single_data::in_flight(): what
//    the target did before releasing is visible to the owner after it sees
//    the lock clear, and the owner may refill the descriptor.
//  - try_lock() acquires for the same reason (an async re-queue reads nothing
//    the target wrote, but the old run's reads of func/info must be done
//    before the owner's refill: the release/acquire pair orders them).
//  - Waking a sleeping owner is a store-then-load handshake; see waiting.cpp.
#pragma once

#include <atomic>
#include <cstdint>

#include "xcall/csd.hpp"

namespace xcall::detail {

class csd_ops {
 public:
  static constexpr std::uint32_t kLocked = 1u << 0;
  static constexpr std::uint32_t kSync = 1u << 1;
  static constexpr std::uint32_t kSleeper = 1u << 2;
  static constexpr unsigned kWaiterShift = 16;
  static_assert((kMaxCpus + 1) <= (1u << (32 - kWaiterShift)), "waiter CPU must fit in flags_");

  static std::atomic<std::uint32_t>& flags(call_single_data& csd) noexcept { return csd.flags_; }
  static call_single_data*& next(call_single_data& csd) noexcept { return csd.next_; }

  static bool is_locked(const call_single_data& csd) noexcept {
    // acquire: pairs with the release in unlock(); see the file comment.
    return (csd.flags_.load(std::memory_order_acquire) & kLocked) != 0;
  }

  /// Marks an idle descriptor in flight. Only its owner locks it, and only
  /// after seeing it unlocked, so a plain store suffices; the push that
  /// publishes it is the release that carries this store to the target.
  static void lock(call_single_data& csd, bool sync) noexcept {
    csd.flags_.store(kLocked | (sync ? kSync : 0u), std::memory_order_relaxed);
  }

  /// Async descriptors are shared with the application, which may race two
  /// queuings of one descriptor: the lock must be taken atomically.
  [[nodiscard]] static bool try_lock(call_single_data& csd) noexcept {
    std::uint32_t expected = 0;
    // acquire: pairs with unlock() of the previous flight (see file comment).
    return csd.flags_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                              std::memory_order_relaxed);
  }

  /// Ends the flight; returns the old flags so the caller can wake a sleeper.
  static std::uint32_t unlock(call_single_data& csd) noexcept {
    // release: publishes the function's effects (sync) and ends our reads of
    // func/info (async); pairs with is_locked()/try_lock()/in_flight().
    return csd.flags_.exchange(0, std::memory_order_release);
  }

  /// Unlocks a descriptor that was locked but never queued (its target went
  /// offline). No target has seen it, so nobody sleeps on it; but an async
  /// descriptor may have another queuer spinning in try_lock().
  static void unlock_unqueued(call_single_data& csd) noexcept {
    // release: ends this flight as unlock() does; pairs with try_lock()'s
    // acquire (the next winner sees what the loser wrote while it held it).
    csd.flags_.store(0, std::memory_order_release);
  }

  /// The target of the current flight (stall reports); owner only.
  static void set_target(call_single_data& csd, cpu_t cpu) noexcept { csd.dst_ = cpu; }
  static cpu_t target(const call_single_data& csd) noexcept { return csd.dst_; }

  static bool is_sync(const call_single_data& csd) noexcept {
    // relaxed: kSync was written by the owner before the release push and
    // read after the host's acquire take; the owner never changes it in flight.
    return (csd.flags_.load(std::memory_order_relaxed) & kSync) != 0;
  }
};

}  // namespace xcall::detail
