// fault_injection.cpp — the switches behind fault_injection.hpp.
//
// Ordering: relaxed throughout; see the header.
#include "fault_injection.hpp"

#if defined(XCALL_FAULT_INJECTION)

namespace xcall::detail::fault {
namespace {

constexpr unsigned kCount = static_cast<unsigned>(kind::count);
std::atomic<unsigned> params[kCount];
std::atomic<unsigned> doorbells_seen{0};
std::atomic<unsigned> allocs_seen{0};

}  // namespace

void arm(kind fault, unsigned value) noexcept {
  params[static_cast<unsigned>(fault)].store(value, std::memory_order_relaxed);
}

void disarm_all() noexcept {
  for (auto& p : params) p.store(0, std::memory_order_relaxed);
}

unsigned param(kind fault) noexcept {
  return params[static_cast<unsigned>(fault)].load(std::memory_order_relaxed);
}

bool drop_this_doorbell() noexcept {
  const unsigned every = param(kind::drop_doorbell);
  if (every == 0) return false;
  return doorbells_seen.fetch_add(1, std::memory_order_relaxed) % every == 0;
}

bool fail_this_alloc() noexcept {
  const unsigned every = param(kind::fail_alloc);
  if (every == 0) return false;
  return allocs_seen.fetch_add(1, std::memory_order_relaxed) % every == every - 1;
}

}  // namespace xcall::detail::fault

#endif
