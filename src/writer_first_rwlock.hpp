// writer_first_rwlock.hpp — a reader-writer lock whose writer is never
// starved by readers: the classic engine's callers hold it shared while they
// publish a call block, and a dying CPU takes it exclusively once, as a
// barrier. glibc's default rwlock (and so std::shared_mutex) prefers
// readers: a steady stream of overlapping callers could hold off cpu_down or
// a detach indefinitely. Readers never nest, so glibc's writer-preferring
// non-recursive kind is safe. Private; meets SharedMutex for std::shared_lock.
//
// Ordering: the pthread rwlock's own (lock acquires, unlock releases).
#pragma once

#include <pthread.h>

namespace xcall::detail {

class writer_first_rwlock {
 public:
  writer_first_rwlock() noexcept {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~writer_first_rwlock() { pthread_rwlock_destroy(&lock_); }
  writer_first_rwlock(const writer_first_rwlock&) = delete;
  writer_first_rwlock& operator=(const writer_first_rwlock&) = delete;

  void lock() noexcept { pthread_rwlock_wrlock(&lock_); }
  void unlock() noexcept { pthread_rwlock_unlock(&lock_); }
  void lock_shared() noexcept { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() noexcept { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace xcall::detail
