// futex.hpp — the two futex operations xcall sleeps and wakes with. Private
// to the library.
//
// Ordering: none of its own. A futex is only a place to block; every
// happens-before edge is made by the atomics around it, and every wait is a
// loop that re-checks its condition, so spurious and stale wake-ups are
// harmless.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>

namespace xcall::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "futex words are std::atomic<uint32_t> used in place as the kernel's u32");

/// Sleeps while *word == expected, at most `timeout` (negative: no limit).
/// Returns at once if the value already differs (the kernel checks it
/// atomically with queuing us, which is what closes the lost-wake race).
inline void futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1)) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout.count() >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, nullptr, 0);
}

/// Wakes up to `count` threads sleeping on `word`. The kernel never touches
/// the memory, so waking a word whose owner has just returned (a descriptor
/// on a stack that is gone) costs at most a spurious wake-up.
inline void futex_wake(const void* word, int count = 1) noexcept {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, nullptr, nullptr, 0);
}

}  // namespace xcall::detail
