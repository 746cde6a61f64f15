// xcall/cpumask.hpp — a fixed-size bitmap of CPUs whose bits other threads may
// flip while it is read or passed to a call (the kernel's `struct cpumask`).
//
// Thread safety: every single-bit operation (set, reset, test, test_and_*) is
// one atomic operation on the word that holds the bit, so any number of
// threads may change different or equal bits at once. Whole-mask operations
// (count, first, next, iteration, copy, &=, |=, assign_and) go word by word:
// each word is read atomically, but the mask as a whole is not a snapshot of
// one instant — exactly the kernel's contract, and what the cross-calls rely
// on when they take their private snapshot of `mask & online`.
//
// Memory ordering: every write (set, reset, set_all, reset_all, &=, |=,
// assign_and, copy-assignment between masks of equal size) is a release,
// test_and_set/test_and_reset are acq_rel, and test and the whole-mask reads
// are acquire loads, so a thread that sees a bit set also sees what the
// setter wrote before setting it. Nothing stronger (no total order between
// bits of different words) is promised: "set my bit, then read shared data"
// against "write shared data, then read the mask" needs a seq_cst fence on
// both sides.
//
// Not thread-safe: move-assignment, and copy-assignment between masks of
// different sizes, replace the bit array; nobody else may use the mask then.
#pragma once

#include <atomic>
#include <cstdint>
#include <iterator>
#include <memory>

#include "xcall/export.h"
#include "xcall/types.hpp"

namespace xcall {

class XCALL_EXPORT cpumask {
 public:
  using word_t = std::uint64_t;
  static constexpr cpu_t kBitsPerWord = 64;

  /// A mask of `nbits` bits, all clear. Allocates; a mask is set up once and
  /// then reused (copy-assigning between masks of equal size allocates nothing).
  explicit cpumask(cpu_t nbits);

  /// A copy is a snapshot, taken word by word.
  cpumask(const cpumask& other);
  cpumask& operator=(const cpumask& other);
  cpumask(cpumask&& other) noexcept;
  cpumask& operator=(cpumask&& other) noexcept;
  ~cpumask();

  cpu_t size() const noexcept { return nbits_; }

  // Single bits. An index >= size() throws std::out_of_range, as
  // std::bitset does.
  void set(cpu_t cpu);
  void reset(cpu_t cpu);
  bool test(cpu_t cpu) const;
  bool test_and_set(cpu_t cpu);    ///< returns the old value
  bool test_and_reset(cpu_t cpu);  ///< returns the old value

  // Whole mask, word by word.
  void set_all() noexcept;
  void reset_all() noexcept;
  cpu_t count() const noexcept;
  bool any() const noexcept;
  bool none() const noexcept { return !any(); }

  /// First set bit, or size() when there is none.
  cpu_t first() const noexcept;
  /// First set bit after `n` (n itself excluded), or size() when there is none.
  /// `next(no_cpu)` starts from bit 0, like the kernel's cpumask_next(-1, m).
  cpu_t next(cpu_t n) const noexcept;

  /// this &= other over this mask's bits; bits past other.size() count as clear.
  cpumask& operator&=(const cpumask& other) noexcept;
  /// this |= other over this mask's bits; other's bits past size() are ignored.
  cpumask& operator|=(const cpumask& other) noexcept;
  /// this = a & b over this mask's bits (the kernel's cpumask_and(dst, a, b)).
  /// Allocates nothing: the cross-calls use it to take their snapshot.
  void assign_and(const cpumask& a, const cpumask& b) noexcept;

  /// Iterates the set bits in increasing order; bits changed during the walk
  /// may or may not be seen, as with next().
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = cpu_t;
    using difference_type = std::ptrdiff_t;
    using pointer = const cpu_t*;
    using reference = cpu_t;

    iterator() = default;
    cpu_t operator*() const noexcept { return cpu_; }
    iterator& operator++() noexcept {
      cpu_ = mask_->next(cpu_);
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.cpu_ == b.cpu_;
    }

   private:
    friend class cpumask;
    iterator(const cpumask* mask, cpu_t cpu) noexcept : mask_(mask), cpu_(cpu) {}
    const cpumask* mask_ = nullptr;
    cpu_t cpu_ = 0;
  };
  iterator begin() const noexcept { return iterator(this, first()); }
  iterator end() const noexcept { return iterator(this, nbits_); }

 private:
  // Not (nbits_ + 63) / 64: that wraps for nbits_ near UINT_MAX.
  cpu_t nwords() const noexcept {
    return nbits_ / kBitsPerWord + (nbits_ % kBitsPerWord != 0 ? 1 : 0);
  }
  /// Mask of the valid bits of word `w` (the last word may be partial).
  word_t valid_bits(cpu_t w) const noexcept;
  void check_index(cpu_t cpu, const char* what) const;
  word_t load_word(cpu_t w) const noexcept;

  cpu_t nbits_ = 0;
  std::unique_ptr<std::atomic<word_t>[]> words_;
};

/// First CPU set in both a and b, or min(a.size(), b.size()) when none.
XCALL_EXPORT cpu_t first_and(const cpumask& a, const cpumask& b) noexcept;
/// First CPU after n set in both a and b, or min(a.size(), b.size()) when none.
XCALL_EXPORT cpu_t next_and(cpu_t n, const cpumask& a, const cpumask& b) noexcept;

}  // namespace xcall
