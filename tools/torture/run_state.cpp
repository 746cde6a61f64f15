// run_state.cpp — the shared state's construction and the seed mixer.
#include "run_state.hpp"

#include "nesting.hpp"
#include "ops.hpp"

namespace xcall_torture {

run_state::run_state(const torture_options& options, xcall::cpu_t n)
    : opt(options),
      nr_cpus(n),
      online(n, !options.attached),
      marks(n),
      enomem_ok(options.has_fault("fail_alloc")),
      pool(options.nesting > 0
               ? std::make_unique<descriptor_pool>(*this, 4 * n * options.nesting + 8)
               : nullptr) {}

run_state::~run_state() = default;

std::chrono::nanoseconds tool_wait_limit(const run_state& run) {
  const auto stall = std::chrono::milliseconds(run.opt.stall_timeout_ms);
  return stall > std::chrono::seconds(5) ? stall : std::chrono::seconds(5);
}

double run_state::elapsed_s() const noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace xcall_torture
