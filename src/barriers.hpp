// barriers.hpp — the store-load fence of the doorbell handshakes and the
// spin-wait hint. Private to the library.
//
// Ordering: store_load_fence() is std::atomic_thread_fence(seq_cst), the
// fence C++ defines for "store, then load another location" (Dekker)
// patterns. GCC warns (-Wtsan) that ThreadSanitizer does not support fences:
// its runtime executes a full hardware fence but does not model the edge. In
// TSan builds a seq_cst read-modify-write of a private word stands in (a
// locked instruction, a full barrier too), so sanitizer builds stay
// warning-free. No data is ever published through these fences, so TSan's
// view of happens-before is the same either way.
#pragma once

#include <atomic>

namespace xcall::detail {

#if defined(__SANITIZE_THREAD__)
#define XCALL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XCALL_TSAN 1
#endif
#endif

inline void store_load_fence() noexcept {
#if defined(XCALL_TSAN)
  static std::atomic<unsigned> word{0};
  word.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

/// The CPU's spin-wait hint (x86 PAUSE, Arm YIELD).
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace xcall::detail
