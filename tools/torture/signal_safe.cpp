// signal_safe.cpp — doorbell-handler detection and the fixed message builder.
//
// Ordering: none; thread-local by nature.
#include "signal_safe.hpp"

#include <pthread.h>
#include <signal.h>

#include "run_state.hpp"

namespace xcall_torture {

bool in_doorbell_handler(const run_state& run) noexcept {
  if (run.opt.delivery != xcall::delivery_mode::signal) return false;
  sigset_t blocked;
  // Cannot tell: say "inside", the answer that only costs some coverage.
  if (pthread_sigmask(SIG_BLOCK, nullptr, &blocked) != 0) return true;
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) {
    if (sigismember(&blocked, s) == 1) return true;
  }
  return false;
}

fixed_text& fixed_text::operator<<(const char* s) noexcept {
  while (*s != '\0' && len_ + 1 < kCapacity) buf_[len_++] = *s++;
  buf_[len_] = '\0';
  return *this;
}

fixed_text& fixed_text::operator<<(std::uint64_t v) noexcept {
  char digits[24];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && len_ + 1 < kCapacity) buf_[len_++] = digits[--n];
  buf_[len_] = '\0';
  return *this;
}

}  // namespace xcall_torture
