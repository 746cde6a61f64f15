// live_mask.cpp — the per-bit sequence protocol of live_mask.hpp.
//
// Ordering: the header's "Memory ordering" paragraph gives the argument; the
// comments below name each side.
#include "live_mask.hpp"

namespace xcall_torture {

live_mask::live_mask(xcall::cpu_t nr_cpus)
    : bits_(nr_cpus), seq_(std::make_unique<std::atomic<std::uint32_t>[]>(nr_cpus)) {}

bool live_mask::try_write(xcall::cpu_t cpu, bool value) {
  std::atomic<std::uint32_t>& seq = seq_[cpu];
  std::uint32_t s = seq.load(std::memory_order_relaxed);
  if ((s & 1) != 0) return false;  // another writer is at this bit
  // relaxed: the odd value needs no ordering of its own; it reaches readers
  // through the flip below (sequenced after it, a release RMW).
  if (!seq.compare_exchange_strong(s, s + 1, std::memory_order_relaxed)) return false;
  const bool flipped = value ? !bits_.test_and_set(cpu) : bits_.test_and_reset(cpu);
  // release: a reader whose acquire load sees the even value also sees the
  // flip; pairs with the acquire in before().
  seq.store(s + 2, std::memory_order_release);
  return flipped;
}

live_mask::view live_mask::before(xcall::cpu_t cpu) const {
  view v;
  // acquire: pairs with the release store that ends a flip in try_write().
  v.seq = seq_[cpu].load(std::memory_order_acquire);
  v.set = bits_.test(cpu);  // acquire (cpumask)
  return v;
}

live_mask::view live_mask::after(xcall::cpu_t cpu) const {
  view v;
  // test() is an acquire that synchronizes with any flip it reads, so the
  // flip's odd CAS is visible to the relaxed load below.
  v.set = bits_.test(cpu);
  v.seq = seq_[cpu].load(std::memory_order_relaxed);
  return v;
}

std::uint32_t live_mask::seq(xcall::cpu_t cpu) const noexcept {
  // relaxed: see handler_mask_check() in checks.cpp, which reads it after an
  // acquire that already ordered the library's reads of the mask.
  return seq_[cpu].load(std::memory_order_relaxed);
}

}  // namespace xcall_torture
