// futex.hpp — the one futex wrapper of xcall's tests and xcall-bench (target
// xcall_test_support). The library keeps its own, private one
// (src/futex.hpp): nothing here is part of xcall.
//
// Ordering: none of its own. A futex is only a place to block; the
// happens-before edges come from the atomics around it, and every wait must
// be a loop that re-checks its condition (spurious returns happen).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace xcall::test_support {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "futex words are std::atomic<uint32_t> used in place as the kernel's u32");

/// Sleeps while *word == expected (spurious returns possible: re-check).
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

/// Wakes up to `count` threads sleeping on `word`.
inline void futex_wake(std::atomic<std::uint32_t>* word, int count = 1) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

}  // namespace xcall::test_support
