// tests/unit/cpumask_test.cpp — unit tests for xcall/cpumask.hpp.
//
// Each public member is checked against a plain std::vector<bool> model over
// sizes that hit every word-boundary case (0, 1, 63, 64, 65, 130, 4096). The
// concurrency tests at the end are small enough for every CI run; under
// ThreadSanitizer the message-passing ones also check the acquire/release
// promise of the header.
#include "xcall/cpumask.hpp"

#include <gtest/gtest.h>
#include <xcall_test_support/alloc_counter.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <iterator>
#include <latch>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// ---- allocation counter ---------------------------------------------------
// The test links xcall_test_support, whose counting allocator replaces the
// global operator new/delete, so a test can assert that an operation
// allocates nothing. The count is relaxed: only the thread under test reads
// it, after the operation.

namespace xcall {
namespace {

using xcall::test_support::allocations;

constexpr cpu_t kSizes[] = {0, 1, 63, 64, 65, 130, 4096};

using model = std::vector<bool>;

// The set bits by range-for. Stops with a failure instead of looping forever
// if a broken next() does not move forward.
std::vector<cpu_t> walk(const cpumask& m) {
  std::vector<cpu_t> out;
  for (cpu_t cpu : m) {
    if (out.size() == m.size()) {
      ADD_FAILURE() << "iteration yields more than size() = " << m.size() << " bits";
      break;
    }
    out.push_back(cpu);
  }
  return out;
}

std::vector<cpu_t> walk(const model& m) {
  std::vector<cpu_t> out;
  for (cpu_t i = 0; i < m.size(); ++i) {
    if (m[i]) out.push_back(i);
  }
  return out;
}

// Model of next(): first set bit strictly after n, n == no_cpu means from 0.
cpu_t model_next(const model& m, cpu_t n) {
  const auto size = static_cast<cpu_t>(m.size());
  for (cpu_t i = (n == no_cpu ? 0 : n + 1); i < size; ++i) {
    if (m[i]) return i;
  }
  return size;
}

// A pattern that touches both ends of every word plus a spread in between.
model pattern(cpu_t size, cpu_t stride) {
  model m(size);
  for (cpu_t i = 0; i < size; ++i) {
    const cpu_t in_word = i % cpumask::kBitsPerWord;
    m[i] = i % stride == 0 || in_word == 63 || i + 1 == size;
  }
  return m;
}

cpumask make(const model& m) {
  cpumask out(static_cast<cpu_t>(m.size()));
  for (cpu_t i = 0; i < m.size(); ++i) {
    if (m[i]) out.set(i);
  }
  return out;
}

model full(cpu_t size) { return model(size, true); }

// Everything observable about a mask agrees with the model.
void expect_matches(const cpumask& m, const model& want) {
  ASSERT_EQ(m.size(), want.size());
  const auto bits = walk(want);
  EXPECT_EQ(walk(m), bits);
  EXPECT_EQ(m.count(), bits.size());
  EXPECT_EQ(m.any(), !bits.empty());
  EXPECT_EQ(m.none(), bits.empty());
  EXPECT_EQ(m.first(), bits.empty() ? m.size() : bits.front());
  for (cpu_t i = 0; i < m.size(); ++i) ASSERT_EQ(m.test(i), want[i]) << "cpu " << i;
}

class CpumaskSized : public ::testing::TestWithParam<cpu_t> {};

INSTANTIATE_TEST_SUITE_P(Sizes, CpumaskSized, ::testing::ValuesIn(kSizes));

// ---- construction and single bits -----------------------------------------

TEST_P(CpumaskSized, NewMaskIsEmpty) {
  const cpumask m(GetParam());
  EXPECT_EQ(m.size(), GetParam());
  expect_matches(m, model(GetParam()));
  EXPECT_TRUE(m.begin() == m.end());
  EXPECT_EQ(m.next(no_cpu), m.size());
}

TEST_P(CpumaskSized, SetAndResetEachBitAlone) {
  cpumask m(GetParam());
  for (cpu_t i = 0; i < m.size(); ++i) {
    m.set(i);
    ASSERT_TRUE(m.test(i));
    ASSERT_EQ(m.count(), 1u);
    ASSERT_EQ(m.first(), i);
    ASSERT_EQ(m.next(i), m.size());
    ASSERT_EQ(walk(m), std::vector<cpu_t>{i});
    m.set(i);  // idempotent
    ASSERT_EQ(m.count(), 1u);
    m.reset(i);
    ASSERT_FALSE(m.test(i));
    ASSERT_TRUE(m.none());
  }
}

TEST_P(CpumaskSized, TestAndSetAndResetReturnTheOldValue) {
  cpumask m(GetParam());
  for (cpu_t i = 0; i < m.size(); ++i) {
    ASSERT_FALSE(m.test_and_reset(i));
    ASSERT_FALSE(m.test(i));
    ASSERT_FALSE(m.test_and_set(i));
    ASSERT_TRUE(m.test(i));
    ASSERT_TRUE(m.test_and_set(i));
    ASSERT_EQ(m.count(), i + 1);  // leaves 0..i set
  }
  for (cpu_t i = 0; i < m.size(); ++i) {
    ASSERT_TRUE(m.test_and_reset(i));
    ASSERT_FALSE(m.test(i));
    ASSERT_FALSE(m.test_and_reset(i));
  }
  EXPECT_TRUE(m.none());
}

TEST_P(CpumaskSized, SetAllSetsExactlyTheValidBits) {
  cpumask m(GetParam());
  m.set_all();
  expect_matches(m, full(GetParam()));
  m.reset_all();
  expect_matches(m, model(GetParam()));
}

TEST_P(CpumaskSized, NextFromEveryPosition) {
  const model want = pattern(GetParam(), 5);
  const cpumask m = make(want);
  for (cpu_t n = 0; n <= m.size() + 1; ++n) {
    ASSERT_EQ(m.next(n), model_next(want, n)) << "n " << n;
  }
  EXPECT_EQ(m.next(no_cpu), m.first());
  EXPECT_EQ(m.next(no_cpu - 1), m.size());
  if (m.size() > 0) {
    EXPECT_EQ(m.next(m.size() - 1), m.size());
  }
}

TEST_P(CpumaskSized, RandomOperationsMatchAModel) {
  const cpu_t size = GetParam();
  std::mt19937 rng(size);
  // Indexes for next() go one past the end and include no_cpu.
  std::uniform_int_distribution<cpu_t> pick_n(0, size + 1);
  cpumask m(size);
  model want(size);
  for (int step = 0; step < 20000; ++step) {
    const cpu_t n = rng() % 16 == 0 ? no_cpu : pick_n(rng);
    const cpu_t i = size == 0 ? 0 : n % size;
    const unsigned op = size == 0 ? 6 + rng() % 4 : rng() % 10;
    switch (op) {
      case 0:
        m.set(i);
        want[i] = true;
        break;
      case 1:
        m.reset(i);
        want[i] = false;
        break;
      case 2:
        ASSERT_EQ(m.test_and_set(i), want[i]);
        want[i] = true;
        break;
      case 3:
        ASSERT_EQ(m.test_and_reset(i), want[i]);
        want[i] = false;
        break;
      case 4:
        ASSERT_EQ(m.test(i), want[i]);
        break;
      case 5:
        ASSERT_EQ(m.count(), walk(want).size());
        break;
      case 6:
        if (rng() % 64 == 0) {
          m.set_all();
          want.assign(size, true);
        }
        break;
      case 7:
        if (rng() % 64 == 0) {
          m.reset_all();
          want.assign(size, false);
        }
        break;
      default:
        ASSERT_EQ(m.next(n), model_next(want, n)) << "n " << n;
        break;
    }
  }
  expect_matches(m, want);
}

// ---- out of range ---------------------------------------------------------

// Calls `op` with `cpu`, expects std::out_of_range; returns its message.
template <typename Op>
std::string out_of_range_message(Op op, cpu_t cpu) {
  try {
    op(cpu);
  } catch (const std::out_of_range& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::out_of_range for cpu " << cpu;
  return {};
}

TEST_P(CpumaskSized, OutOfRangeIndexThrowsAndChangesNothing) {
  const cpu_t size = GetParam();
  cpumask m(size);
  const model want = pattern(size, 3);
  m |= make(want);
  struct named_op {
    const char* name;
    void (*op)(cpumask&, cpu_t);
  };
  const named_op ops[] = {
      {"set", [](cpumask& x, cpu_t c) { x.set(c); }},
      {"reset", [](cpumask& x, cpu_t c) { x.reset(c); }},
      {"test", [](cpumask& x, cpu_t c) { (void)x.test(c); }},
      {"test_and_set", [](cpumask& x, cpu_t c) { (void)x.test_and_set(c); }},
      {"test_and_reset", [](cpumask& x, cpu_t c) { (void)x.test_and_reset(c); }},
  };
  for (const named_op& o : ops) {
    for (cpu_t cpu : {size, size + 1, size + 64, no_cpu - 1, no_cpu}) {
      const std::string msg = out_of_range_message([&](cpu_t c) { o.op(m, c); }, cpu);
      EXPECT_EQ(msg, std::string("xcall::cpumask::") + o.name + ": cpu " + std::to_string(cpu) +
                         " >= size " + std::to_string(size));
    }
  }
  expect_matches(m, want);
}

TEST(Cpumask, OutOfRangeMessageMatchesTheDocumentedForm) {
  cpumask m(64);
  EXPECT_EQ(out_of_range_message([&](cpu_t c) { m.set(c); }, 70),
            "xcall::cpumask::set: cpu 70 >= size 64");
}

// ---- copy and move --------------------------------------------------------

TEST_P(CpumaskSized, CopyIsASnapshot) {
  const cpu_t size = GetParam();
  const model before = pattern(size, 7);
  cpumask original = make(before);
  const cpumask copy(original);
  cpumask assigned(size);
  assigned = original;
  original.set_all();
  if (size > 0) original.reset(0);
  expect_matches(copy, before);
  expect_matches(assigned, before);
  // And the other way round: changing the copy leaves the original alone.
  cpumask copy2(original);
  copy2.reset_all();
  EXPECT_EQ(original.count(), size == 0 ? 0 : size - 1);
}

TEST_P(CpumaskSized, CopyAssignBetweenEqualSizesAllocatesNothing) {
  const cpu_t size = GetParam();
  const cpumask src = make(pattern(size, 3));
  cpumask dst(size);
  dst.set_all();  // stale bits must all be overwritten, including set ones
  const std::uint64_t before = allocations();
  dst = src;
  EXPECT_EQ(allocations(), before);
  expect_matches(dst, pattern(size, 3));
  {
    // The counter is live in this build (a constructor allocates), so the
    // EXPECT_EQ above is not vacuous.
    const std::uint64_t before_ctor = allocations();
    const cpumask fresh(size);
    EXPECT_GT(allocations(), before_ctor);
  }
  const cpumask& alias = dst;
  dst = alias;  // self-assignment keeps the bits
  expect_matches(dst, pattern(size, 3));
}

TEST_P(CpumaskSized, CopyAssignBetweenDifferentSizesAdoptsTheSource) {
  for (cpu_t other : kSizes) {
    if (other == GetParam()) continue;
    const cpumask src = make(pattern(other, 4));
    cpumask dst(GetParam());
    dst.set_all();
    dst = src;
    expect_matches(dst, pattern(other, 4));
    dst.set_all();  // the new array really has the new size
    EXPECT_EQ(dst.count(), other);
    EXPECT_EQ(src.count(), walk(pattern(other, 4)).size());
  }
}

TEST_P(CpumaskSized, MoveLeavesAnEmptyZeroSizeMask) {
  const cpu_t size = GetParam();
  const model want = pattern(size, 2);
  cpumask a = make(want);
  cpumask b(std::move(a));
  expect_matches(b, want);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): documented state
  expect_matches(a, model());
  EXPECT_TRUE(a.begin() == a.end());

  cpumask c(5);
  c.set(4);
  c = std::move(b);
  expect_matches(c, want);
  EXPECT_EQ(b.size(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.count(), 0u);

  cpumask* self = &c;
  c = std::move(*self);  // self-move keeps the mask
  expect_matches(c, want);

  // A moved-from mask is usable again once assigned.
  a = c;
  expect_matches(a, want);
}

// ---- iteration ------------------------------------------------------------

static_assert(std::forward_iterator<cpumask::iterator>);

TEST_P(CpumaskSized, RangeForVisitsTheSetBitsInOrder) {
  const model want = pattern(GetParam(), 9);
  const cpumask m = make(want);
  ASSERT_EQ(walk(m), walk(want));  // walk() is a range-for; std::distance relies on it ending
  EXPECT_EQ(static_cast<std::size_t>(std::distance(m.begin(), m.end())), walk(want).size());
  auto it = m.begin();
  for (cpu_t cpu : walk(want)) {
    ASSERT_FALSE(it == m.end());
    const auto old = it++;
    EXPECT_EQ(*old, cpu);
  }
  EXPECT_TRUE(it == m.end());
  EXPECT_EQ(*m.end(), m.size());
}

// ---- &=, |=, assign_and, first_and, next_and over every pair of sizes -----

model model_and(const model& a, const model& b, cpu_t size) {
  model out(size);
  for (cpu_t i = 0; i < size; ++i) {
    out[i] = i < a.size() && a[i] && i < b.size() && b[i];
  }
  return out;
}

model model_or_into(model dst, const model& src) {
  for (cpu_t i = 0; i < dst.size() && i < src.size(); ++i) dst[i] = dst[i] || src[i];
  return dst;
}

// Source patterns for the binary operations: full masks catch bits leaking
// past a smaller size; the strided ones catch misaligned words.
std::vector<model> sources(cpu_t size) {
  return {model(size), full(size), pattern(size, 3), pattern(size, 2)};
}

TEST_P(CpumaskSized, AndAssignWithEverySize) {
  for (cpu_t other : kSizes) {
    for (const model& dst_bits : sources(GetParam())) {
      for (const model& src_bits : sources(other)) {
        cpumask dst = make(dst_bits);
        dst &= make(src_bits);
        SCOPED_TRACE("other size " + std::to_string(other));
        expect_matches(dst, model_and(dst_bits, src_bits, GetParam()));
      }
    }
  }
}

TEST_P(CpumaskSized, OrAssignWithEverySize) {
  for (cpu_t other : kSizes) {
    for (const model& dst_bits : sources(GetParam())) {
      for (const model& src_bits : sources(other)) {
        cpumask dst = make(dst_bits);
        dst |= make(src_bits);
        SCOPED_TRACE("other size " + std::to_string(other));
        expect_matches(dst, model_or_into(dst_bits, src_bits));
      }
    }
  }
}

TEST_P(CpumaskSized, AndAndOrWithItself) {
  const model want = pattern(GetParam(), 3);
  cpumask m = make(want);
  const cpumask& alias = m;
  m &= alias;
  expect_matches(m, want);
  m |= alias;
  expect_matches(m, want);
  m.assign_and(m, m);
  expect_matches(m, want);
}

TEST_P(CpumaskSized, AssignAndWithEverySizeAllocatesNothing) {
  for (cpu_t sa : kSizes) {
    for (cpu_t sb : kSizes) {
      const cpumask a = make(full(sa));
      const cpumask b = make(pattern(sb, 3));
      cpumask dst(GetParam());
      dst.set_all();  // assign_and overwrites, it does not and into dst
      const std::uint64_t before = allocations();
      dst.assign_and(a, b);
      EXPECT_EQ(allocations(), before);
      SCOPED_TRACE("sizes " + std::to_string(sa) + ", " + std::to_string(sb));
      expect_matches(dst, model_and(full(sa), pattern(sb, 3), GetParam()));
    }
  }
}

TEST_P(CpumaskSized, FirstAndNextAndWithEverySize) {
  for (cpu_t other : kSizes) {
    for (const model& a_bits : sources(GetParam())) {
      for (const model& b_bits : sources(other)) {
        const cpumask a = make(a_bits);
        const cpumask b = make(b_bits);
        const cpu_t limit = std::min(a.size(), b.size());
        const model both = model_and(a_bits, b_bits, limit);
        SCOPED_TRACE("sizes " + std::to_string(a.size()) + ", " + std::to_string(b.size()));
        ASSERT_EQ(first_and(a, b), model_next(both, no_cpu));
        ASSERT_EQ(first_and(b, a), model_next(both, no_cpu));
        for (cpu_t n = 0; n <= limit + 1; ++n) {
          ASSERT_EQ(next_and(n, a, b), model_next(both, n)) << "n " << n;
        }
        ASSERT_EQ(next_and(no_cpu, a, b), first_and(a, b));
        ASSERT_EQ(next_and(no_cpu - 1, a, b), limit);
      }
    }
  }
}

// Interleaved masks make the leapfrog in next_and step one bit at a time.
TEST(Cpumask, NextAndOnDisjointInterleavedMasksFindsNothing) {
  cpumask even(4096), odd(4096);
  for (cpu_t i = 0; i < 4096; i += 2) {
    even.set(i);
    odd.set(i + 1);
  }
  EXPECT_EQ(first_and(even, odd), 4096u);
  odd.set(4094);
  EXPECT_EQ(first_and(even, odd), 4094u);
  EXPECT_EQ(next_and(4094, even, odd), 4096u);
}

// ---- concurrency ----------------------------------------------------------

constexpr cpu_t kWriters = 8;        // all of them share word 0
constexpr cpu_t kBitsPerWriter = 8;  // writer t owns t, t+8, ..., t+56
constexpr int kRounds = 3000;

cpu_t owned_bit(cpu_t writer, cpu_t j) { return writer + j * kWriters; }

// Final state a writer leaves: its own bit j set iff j + writer is even.
bool left_set(cpu_t writer, cpu_t j) { return (writer + j) % 2 == 0; }

// Flips only its own bits; since nobody else touches them, every read-back
// must match exactly. A non-atomic read-modify-write anywhere in the mask
// (here or in a concurrent whole-mask writer) loses some of these updates.
// On x86 the window is a few cycles, so a plain build on a busy machine may
// miss it; the ThreadSanitizer build widens it and catches it every time.
// Returns the number of mismatches seen.
int run_writer(cpumask& m, cpu_t writer) {
  int bad = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (cpu_t j = 0; j < kBitsPerWriter; ++j) {
      const cpu_t bit = owned_bit(writer, j);
      m.set(bit);
      bad += !m.test(bit);
      bad += !m.test_and_reset(bit);
      bad += m.test(bit);
      bad += m.test_and_set(bit);
      bad += !m.test_and_set(bit);
      m.reset(bit);
      bad += m.test_and_reset(bit);
    }
  }
  for (cpu_t j = 0; j < kBitsPerWriter; ++j) {
    if (left_set(writer, j)) m.set(owned_bit(writer, j));
  }
  return bad;
}

// Whole-mask reads during the churn must stay well-formed.
int run_reader(const cpumask& m, const std::atomic<bool>& done) {
  int bad = 0;
  // Relaxed: `done` only ends the loop; the join publishes everything else.
  while (!done.load(std::memory_order_relaxed)) {
    bad += m.count() > m.size();
    bad += m.first() > m.size();
    cpu_t prev = no_cpu;
    for (cpu_t cpu : m) {
      if (cpu >= m.size() || (prev != no_cpu && cpu <= prev)) {
        ++bad;
        break;  // a walk that does not move forward would never end
      }
      prev = cpu;
    }
    const cpumask snapshot(m);
    bad += snapshot.count() > m.size();
  }
  return bad;
}

model expected_after_writers(cpu_t size) {
  model want(size);
  for (cpu_t t = 0; t < kWriters; ++t) {
    for (cpu_t j = 0; j < kBitsPerWriter; ++j) want[owned_bit(t, j)] = left_set(t, j);
  }
  return want;
}

// `extra` runs beside the writers until they finish. All threads start
// together: on a machine with few cores, writers started one by one would
// hardly overlap and a lost update would go unnoticed.
template <typename Extra>
void churn_one_word(cpumask& m, Extra extra) {
  std::latch start(kWriters + 2);
  std::atomic<bool> done{false};
  std::vector<int> bad(kWriters, 0);
  std::vector<std::thread> writers;
  int reader_bad = 0;
  int extra_bad = 0;
  std::thread reader([&] {
    start.arrive_and_wait();
    reader_bad = run_reader(m, done);
  });
  std::thread extra_thread([&] {
    start.arrive_and_wait();
    extra_bad = extra(done);
  });
  for (cpu_t t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      start.arrive_and_wait();
      bad[t] = run_writer(m, t);
    });
  }
  for (std::thread& w : writers) w.join();
  // Relaxed: see run_reader().
  done.store(true, std::memory_order_relaxed);
  reader.join();
  extra_thread.join();
  for (cpu_t t = 0; t < kWriters; ++t) EXPECT_EQ(bad[t], 0) << "writer " << t;
  EXPECT_EQ(reader_bad, 0);
  EXPECT_EQ(extra_bad, 0);
}

TEST(CpumaskConcurrency, DisjointBitsOfOneWordAreNeverLost) {
  cpumask m(130);
  m.set(64);  // bits in other words must stay untouched
  m.set(129);
  churn_one_word(m, [](const std::atomic<bool>&) { return 0; });
  model want = expected_after_writers(130);
  want[64] = want[129] = true;
  expect_matches(m, want);
}

// &= with a full mask and |= with an empty one change nothing, so they must
// not undo the writers' concurrent changes either.
TEST(CpumaskConcurrency, NoOpAndAssignDoesNotUndoConcurrentBitChanges) {
  cpumask m(64);
  cpumask all(64);
  all.set_all();
  churn_one_word(m, [&](const std::atomic<bool>& done) {
    // Relaxed: see run_reader().
    while (!done.load(std::memory_order_relaxed)) m &= all;
    return 0;
  });
  expect_matches(m, expected_after_writers(64));
}

TEST(CpumaskConcurrency, NoOpOrAssignDoesNotUndoConcurrentBitChanges) {
  cpumask m(64);
  const cpumask none(64);
  churn_one_word(m, [&](const std::atomic<bool>& done) {
    // Relaxed: see run_reader().
    while (!done.load(std::memory_order_relaxed)) m |= none;
    return 0;
  });
  expect_matches(m, expected_after_writers(64));
}

// Message passing: a plain write before the mask change must be visible after
// a reader observes the change. ThreadSanitizer reports a race here if the
// release or the acquire side were relaxed.
template <typename Publish, typename Observe>
void expect_publishes(Publish publish, Observe observe, bool start_full = false) {
  cpumask m(130);
  if (start_full) m.set_all();
  int payload = 0;
  std::thread writer([&] {
    payload = 42;
    publish(m);
  });
  // The deadline only turns a broken writer (the change never shows) into a
  // failure instead of a hang; a correct mask is seen within microseconds.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool seen = false;
  while (!(seen = observe(m)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  if (seen) {
    EXPECT_EQ(payload, 42);  // before join(): only the mask may order this read
  } else {
    ADD_FAILURE() << "the writer's change never became visible";
  }
  writer.join();
}

cpumask with_bits(std::initializer_list<cpu_t> bits) {
  cpumask m(130);
  for (cpu_t b : bits) m.set(b);
  return m;
}

TEST(CpumaskOrdering, BitWritersPublishToReaders) {
  expect_publishes([](cpumask& m) { m.set(100); }, [](const cpumask& m) { return m.test(100); });
  expect_publishes([](cpumask& m) { m.set(100); }, [](const cpumask& m) { return m.count() == 1; });
  expect_publishes([](cpumask& m) { (void)m.test_and_set(129); },
                   [](const cpumask& m) { return m.first() == 129; });
  expect_publishes([](cpumask& m) { m.set(70); }, [](cpumask& m) { return m.test_and_reset(70); });
  expect_publishes([](cpumask& m) { m.reset(7); }, [](const cpumask& m) { return !m.test(7); },
                   true);
  // test_and_set() finds the bit clear only after the writer's reset().
  expect_publishes([](cpumask& m) { m.reset(100); },
                   [](cpumask& m) { return !m.test_and_set(100); }, true);
  expect_publishes([](cpumask& m) { (void)m.test_and_reset(7); },
                   [](const cpumask& m) { return m.next(6) == 8; }, true);
}

TEST(CpumaskOrdering, WholeMaskWritersPublishToReaders) {
  expect_publishes([](cpumask& m) { m.set_all(); },
                   [](const cpumask& m) { return m.next(128) == 129; });
  expect_publishes([](cpumask& m) { m.reset_all(); }, [](const cpumask& m) { return m.none(); },
                   true);
  expect_publishes(
      [](cpumask& m) {
        const cpumask src = with_bits({3, 90});
        m = src;  // copy-assign between equal sizes: word stores, no new array
      },
      [](const cpumask& m) { return m.test(90); });
  expect_publishes([](cpumask& m) { m |= with_bits({65}); },
                   [](const cpumask& m) { return cpumask(m).any(); });
  expect_publishes([](cpumask& m) { m &= with_bits({65}); },
                   [](const cpumask& m) { return m.count() == 1; }, true);
  expect_publishes(
      [](cpumask& m) {
        m.assign_and(with_bits({1, 2}), with_bits({2, 3}));
      },
      [](const cpumask& m) { return first_and(m, with_bits({2})) == 2; });
}

}  // namespace
}  // namespace xcall
