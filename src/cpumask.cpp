// src/cpumask.cpp — the word-atomic CPU bitmap declared in xcall/cpumask.hpp.
//
// Ordering:
//  - Every write to a word that may be shared is a release: set/reset (RMW),
//    set_all/reset_all/copy-assign/assign_and (store), &=/|= (RMW). Every read
//    of a shared word is an acquire: test() and load_word(), which count, any,
//    first, next, iteration, copies and the sources of &=, |=, assign_and use.
//    Edge: what a writer did before changing a word happens-before what a
//    reader does after it read that word's new value (or a later value in the
//    release sequence of RMWs that follows it).
//  - test_and_set/test_and_reset are acq_rel: release for the edge above, and
//    acquire because the old value they return is a read too, so "I found the
//    bit set" carries the same promise as test() returning true.
//  - No edge joins different words: a walk over the mask is not a snapshot.
//  - Relaxed is used only to fill words no other thread can see yet (copy
//    construction); whoever publishes the new mask provides the edge.
//
// Writes to shared words are per-word atomic (RMW or store), never a
// load-then-store, so &= and |= cannot undo a concurrent single-bit change.
#include "xcall/cpumask.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>
#include <utility>

namespace xcall {
namespace {

using word_t = cpumask::word_t;

constexpr word_t kAllOnes = ~word_t{0};

cpu_t word_of(cpu_t cpu) noexcept { return cpu / cpumask::kBitsPerWord; }

word_t bit_of(cpu_t cpu) noexcept { return word_t{1} << (cpu % cpumask::kBitsPerWord); }

// A zeroed array of n words (std::atomic value-initializes to 0 since C++20).
std::unique_ptr<std::atomic<word_t>[]> alloc_words(cpu_t n) {
  return std::make_unique<std::atomic<word_t>[]>(n);
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_out_of_range(const char* what, cpu_t cpu,
                                                               cpu_t size) {
  throw std::out_of_range("xcall::cpumask::" + std::string(what) + ": cpu " + std::to_string(cpu) +
                          " >= size " + std::to_string(size));
}

}  // namespace

// ---- construction ---------------------------------------------------------

cpumask::cpumask(cpu_t nbits) : nbits_(nbits), words_(alloc_words(nwords())) {}

cpumask::cpumask(const cpumask& other) : nbits_(other.nbits_), words_(alloc_words(nwords())) {
  for (cpu_t w = 0; w < nwords(); ++w) {
    // Relaxed: this mask is not shared yet; publishing it is the owner's edge.
    words_[w].store(other.load_word(w), std::memory_order_relaxed);
  }
}

// Equal sizes: overwrite word by word, no allocation, safe against concurrent
// readers and bit writers. Different sizes: replace the array, which must not
// race with any other use of this mask.
cpumask& cpumask::operator=(const cpumask& other) {
  if (this == &other) return *this;
  if (nbits_ != other.nbits_) return *this = cpumask(other);
  for (cpu_t w = 0; w < nwords(); ++w) {
    // Release: publishes what this thread wrote before the assignment; pairs
    // with the acquire in test()/load_word().
    words_[w].store(other.load_word(w), std::memory_order_release);
  }
  return *this;
}

cpumask::cpumask(cpumask&& other) noexcept
    : nbits_(std::exchange(other.nbits_, 0)), words_(std::move(other.words_)) {}

cpumask& cpumask::operator=(cpumask&& other) noexcept {
  if (this == &other) return *this;
  nbits_ = std::exchange(other.nbits_, 0);
  words_ = std::move(other.words_);
  return *this;
}

cpumask::~cpumask() = default;

// ---- private helpers ------------------------------------------------------

cpumask::word_t cpumask::valid_bits(cpu_t w) const noexcept {
  const cpu_t tail = nbits_ % kBitsPerWord;
  if (w + 1 < nwords() || tail == 0) return kAllOnes;
  return (word_t{1} << tail) - 1;
}

void cpumask::check_index(cpu_t cpu, const char* what) const {
  if (cpu >= nbits_) [[unlikely]] {
    throw_out_of_range(what, cpu, nbits_);
  }
}

cpumask::word_t cpumask::load_word(cpu_t w) const noexcept {
  // Acquire: pairs with the release of whichever writer (set, reset,
  // test_and_*, set_all, reset_all, copy-assign, &=, |=, assign_and) last
  // changed this word.
  return words_[w].load(std::memory_order_acquire);
}

// ---- single bits ----------------------------------------------------------

void cpumask::set(cpu_t cpu) {
  check_index(cpu, "set");
  // Release: publishes what the setter wrote before set(); pairs with the
  // acquire in test()/load_word()/test_and_*.
  words_[word_of(cpu)].fetch_or(bit_of(cpu), std::memory_order_release);
}

void cpumask::reset(cpu_t cpu) {
  check_index(cpu, "reset");
  // Release: publishes what the caller wrote before reset(); pairs with the
  // acquire in test()/load_word()/test_and_*.
  words_[word_of(cpu)].fetch_and(~bit_of(cpu), std::memory_order_release);
}

bool cpumask::test(cpu_t cpu) const {
  check_index(cpu, "test");
  // Acquire: pairs with the release in set()/reset() and the other writers,
  // so seeing the bit set shows what its setter wrote before.
  return (words_[word_of(cpu)].load(std::memory_order_acquire) & bit_of(cpu)) != 0;
}

bool cpumask::test_and_set(cpu_t cpu) {
  check_index(cpu, "test_and_set");
  const word_t bit = bit_of(cpu);
  // Acq_rel: release pairs with the acquire in test()/load_word(); acquire
  // pairs with the release of the writer whose value we read back as "old".
  return (words_[word_of(cpu)].fetch_or(bit, std::memory_order_acq_rel) & bit) != 0;
}

bool cpumask::test_and_reset(cpu_t cpu) {
  check_index(cpu, "test_and_reset");
  const word_t bit = bit_of(cpu);
  // Acq_rel: as in test_and_set(); a caller that clears a bit it found set
  // sees what the setter wrote before setting it.
  return (words_[word_of(cpu)].fetch_and(~bit, std::memory_order_acq_rel) & bit) != 0;
}

// ---- whole mask -----------------------------------------------------------

void cpumask::set_all() noexcept {
  for (cpu_t w = 0; w < nwords(); ++w) {
    // Release: pairs with the acquire in test()/load_word(). valid_bits()
    // keeps the bits past size() in the last word clear.
    words_[w].store(valid_bits(w), std::memory_order_release);
  }
}

void cpumask::reset_all() noexcept {
  for (cpu_t w = 0; w < nwords(); ++w) {
    // Release: pairs with the acquire in test()/load_word().
    words_[w].store(0, std::memory_order_release);
  }
}

cpu_t cpumask::count() const noexcept {
  cpu_t n = 0;
  for (cpu_t w = 0; w < nwords(); ++w) n += static_cast<cpu_t>(std::popcount(load_word(w)));
  return n;
}

bool cpumask::any() const noexcept {
  for (cpu_t w = 0; w < nwords(); ++w) {
    if (load_word(w) != 0) return true;
  }
  return false;
}

cpu_t cpumask::first() const noexcept { return next(no_cpu); }

cpu_t cpumask::next(cpu_t n) const noexcept {
  const cpu_t start = n + 1;  // no_cpu + 1 wraps to 0: next(no_cpu) scans from 0
  if (start >= nbits_) return nbits_;
  cpu_t w = word_of(start);
  word_t bits = load_word(w) & (kAllOnes << (start % kBitsPerWord));
  while (bits == 0) {
    if (++w == nwords()) return nbits_;
    bits = load_word(w);
  }
  return w * kBitsPerWord + static_cast<cpu_t>(std::countr_zero(bits));
}

cpumask& cpumask::operator&=(const cpumask& other) noexcept {
  for (cpu_t w = 0; w < nwords(); ++w) {
    const word_t keep = w < other.nwords() ? other.load_word(w) : 0;
    // Release: pairs with the acquire in test()/load_word(). An RMW, so a
    // concurrent set()/reset() of another bit of this word is not undone.
    words_[w].fetch_and(keep, std::memory_order_release);
  }
  return *this;
}

cpumask& cpumask::operator|=(const cpumask& other) noexcept {
  const cpu_t shared = std::min(nwords(), other.nwords());
  for (cpu_t w = 0; w < shared; ++w) {
    const word_t add = other.load_word(w) & valid_bits(w);
    // Release: pairs with the acquire in test()/load_word(). An RMW, as in &=.
    words_[w].fetch_or(add, std::memory_order_release);
  }
  return *this;
}

void cpumask::assign_and(const cpumask& a, const cpumask& b) noexcept {
  for (cpu_t w = 0; w < nwords(); ++w) {
    const word_t aw = w < a.nwords() ? a.load_word(w) : 0;
    const word_t bw = w < b.nwords() ? b.load_word(w) : 0;
    // Release: pairs with the acquire in test()/load_word(). valid_bits()
    // drops bits of a and b that lie past this mask's size.
    words_[w].store(aw & bw & valid_bits(w), std::memory_order_release);
  }
}

// ---- free functions -------------------------------------------------------

cpu_t first_and(const cpumask& a, const cpumask& b) noexcept { return next_and(no_cpu, a, b); }

// Leapfrog: jump to a's next bit, then to b's first bit at or after it, until
// both land on the same CPU. Each step is a word scan (next()), and the CPU
// only moves forward, so this ends after at most size() steps.
cpu_t next_and(cpu_t n, const cpumask& a, const cpumask& b) noexcept {
  const cpu_t limit = std::min(a.size(), b.size());
  cpu_t cpu = a.next(n);
  while (cpu < limit) {
    const cpu_t in_b = b.next(cpu - 1);  // cpu - 1 wraps to no_cpu for cpu 0
    if (in_b == cpu) return cpu;
    if (in_b >= limit) break;
    cpu = a.next(in_b - 1);
  }
  return limit;
}

}  // namespace xcall
