// live_mask.hpp — an invoker's live mask: the cpumask it passes to calls
// while mask-churn threads (and the invoker itself) set and clear its bits,
// plus a per-bit sequence count that tells the checker afterwards whether a
// bit held still for a whole call.
//
// Writers of bit b (churners, the invoker) take the bit's sequence from even
// to odd with a CAS (so writers of one bit exclude each other), flip the bit,
// and store the next even value. A reader brackets a call:
//   before: s1 = seq (acquire), b1 = bit      after: b2 = bit, s2 = seq
// and the bit "held" for the whole call iff s1 is even and s2 == s1 — then
// every read of the bit in between (the library's included: it reads the
// mask on the same thread, between the two) saw b1.
//
// Thread safety: any number of writers and readers, on any bits.
//
// Memory ordering (why "held" is sound):
//  - A flip F the library could see lies after the reader's b1 and at or
//    before its b2 in the word's modification order. b2 (acquire, test())
//    reads F or a later RMW of F's release sequence (every write to the word
//    is a set/reset RMW), so it synchronizes with F; the writer's odd CAS is
//    sequenced before F, so it happens-before s2: s2 != s1.
//  - If s1 already read the even store that ends F, F happens-before s1
//    (that store is a release, s1 an acquire) and so before b1: F is not
//    between b1 and b2. If s1 read F's odd value, s1 is odd: not held.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "xcall/cpumask.hpp"
#include "xcall/types.hpp"

namespace xcall_torture {

class live_mask {
 public:
  explicit live_mask(xcall::cpu_t nr_cpus);

  /// The mask to pass to calls.
  const xcall::cpumask& mask() const noexcept { return bits_; }
  xcall::cpu_t size() const noexcept { return bits_.size(); }

  /// Sets bit `cpu` to `value` unless another writer holds the bit right
  /// now. Returns true if the bit flipped.
  bool try_write(xcall::cpu_t cpu, bool value);

  /// One side of the bracket around a call.
  struct view {
    std::uint32_t seq = 1;  // odd: unknown
    bool set = false;
  };
  view before(xcall::cpu_t cpu) const;
  view after(xcall::cpu_t cpu) const;
  /// Current sequence of a bit (for a handler's late look).
  std::uint32_t seq(xcall::cpu_t cpu) const noexcept;

 private:
  xcall::cpumask bits_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> seq_;
};

/// What a bracket says about one bit (or one CPU's online state).
enum class held : std::uint8_t {
  clear,    ///< clear (offline) for the whole call
  changed,  ///< changed, or may have changed, during the call
  set,      ///< set (online) for the whole call
};

inline held classify(const live_mask::view& before, const live_mask::view& after) noexcept {
  if ((before.seq & 1) != 0 || before.seq != after.seq) return held::changed;
  return before.set ? held::set : held::clear;
}

}  // namespace xcall_torture
