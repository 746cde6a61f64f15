// cpumask_bench.cpp — xcall::cpumask operations at the sizes that matter:
// 64 bits (one word: a small domain) and 4096 bits (kMaxCpus: 64 words).
// Every operation is word-atomic (see xcall/cpumask.hpp); these figures are
// what a cross-call's snapshot (assign_and) and target walk (next) cost.
//
//   xcall-micro --benchmark_filter=cpumask
#include <benchmark/benchmark.h>

#include <xcall/cpumask.hpp>

namespace {

using xcall::cpu_t;
using xcall::cpumask;

/// Every `stride`-th bit set (1: all, 2: half, 64: one per word).
cpumask pattern(cpu_t nbits, cpu_t stride, cpu_t offset = 0) {
  cpumask m(nbits);
  for (cpu_t i = offset % stride; i < nbits; i += stride) m.set(i);
  return m;
}

void BM_cpumask_set(benchmark::State& state) {
  const auto n = static_cast<cpu_t>(state.range(0));
  cpumask m(n);
  cpu_t i = 0;
  for (auto _ : state) {
    m.set(i);
    i = (i + 7) % n;  // walk every word, not one
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cpumask_set)->Arg(64)->Arg(4096);

void BM_cpumask_test(benchmark::State& state) {
  const auto n = static_cast<cpu_t>(state.range(0));
  const cpumask m = pattern(n, 2);
  cpu_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m.test(i));
    i = (i + 7) % n;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cpumask_test)->Arg(64)->Arg(4096);

void BM_cpumask_count(benchmark::State& state) {
  const auto n = static_cast<cpu_t>(state.range(0));
  const cpumask m = pattern(n, 2);
  for (auto _ : state) benchmark::DoNotOptimize(m.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cpumask_count)->Arg(64)->Arg(4096);

/// Iterating the set bits (first/next): args are bits and stride.
void BM_cpumask_next_iteration(benchmark::State& state) {
  const auto n = static_cast<cpu_t>(state.range(0));
  const auto stride = static_cast<cpu_t>(state.range(1));
  const cpumask m = pattern(n, stride);
  std::int64_t visited = 0;
  for (auto _ : state) {
    cpu_t sum = 0;
    for (cpu_t c : m) sum += c;
    benchmark::DoNotOptimize(sum);
    visited += n / stride;
  }
  state.SetItemsProcessed(visited);  // items: set bits visited
}
BENCHMARK(BM_cpumask_next_iteration)
    ->ArgNames({"bits", "stride"})
    ->Args({64, 1})
    ->Args({64, 2})
    ->Args({4096, 1})
    ->Args({4096, 2})
    ->Args({4096, 64});

/// dst = a & b: the snapshot every multi-CPU call takes (mask & online).
void BM_cpumask_assign_and(benchmark::State& state) {
  const auto n = static_cast<cpu_t>(state.range(0));
  const cpumask a = pattern(n, 2);
  const cpumask b = pattern(n, 3);
  cpumask dst(n);
  for (auto _ : state) {
    dst.assign_and(a, b);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cpumask_assign_and)->Arg(64)->Arg(4096);

}  // namespace
