// idle.ipp — domain_impl::idle_until, the one way a host waits for work:
// spin (poll mode forever, adaptive for idle_spin), then sleep on its state
// word. Included by domain_impl.hpp.
//
// Ordering: the sleep half is host_sleep(), doorbell.hpp.
#pragma once

#include "doorbell.hpp"
#include "barriers.hpp"

namespace xcall::detail {

template <class HasWork>
void domain_impl::idle_until(cpu_state& c, HasWork&& has_work,
                             std::chrono::steady_clock::time_point deadline,
                             std::uint32_t resume_state) {
  using clock = std::chrono::steady_clock;
  const bool poll_forever = options_.idle == idle_mode::poll;
  const auto spin_end = options_.idle == idle_mode::sleep ? clock::time_point::min()
                                                          : clock::now() + options_.idle_spin;
  for (unsigned i = 1;; ++i) {
    if (has_work()) return;
    cpu_relax();
    if (i % 64 != 0) continue;  // read the clock only now and then
    const auto now = clock::now();
    if (now >= deadline) return;
    if (!poll_forever && now >= spin_end) break;
  }
  const auto now = clock::now();
  if (now >= deadline) return;
  const auto left = deadline == clock::time_point::max()
                        ? std::chrono::nanoseconds(-1)
                        : std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
  host_sleep(c, has_work, left, resume_state);
}

}  // namespace xcall::detail
