// fd_doorbell.cpp — delivery_mode::fd: the eventfd doorbell and the host's
// loop_wait around its event loop's kernel wait. See fd_doorbell.hpp for the
// protocol and its ordering; model/doorbell_fd.pml checks it.
#include "fd_doorbell.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

#include "barriers.hpp"
#include "domain_impl.hpp"
#include "thread_context.hpp"
#include "trace.hpp"
#include "xcall/cpu.hpp"

namespace xcall::detail {

void read_doorbell_fd(int fd) noexcept {
  for (;;) {
    std::uint64_t count = 0;
    if (::read(fd, &count, sizeof(count)) == static_cast<ssize_t>(sizeof(count))) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return;  // the attachment owns fd: cannot happen
    pollfd p{fd, POLLIN, 0};
    (void)::poll(&p, 1, -1);  // the claimer is between its CAS and its write
  }
}

int open_doorbell_fd(cpu_t id) {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    throw std::system_error(
        errno, std::generic_category(),
        "xcall::domain::attach(" + std::to_string(id) + "): eventfd for delivery_mode::fd");
  }
  return fd;
}

void write_doorbell_fd(cpu_state& cpu) noexcept {
  std::uint32_t expected = kHostLoopBlocked;
  // relaxed: the state word carries no data (the queue's release/acquire
  // does); the claim only has to be ordered against the host's exchange in
  // ~loop_wait, which the word's single modification order does.
  if (!cpu.host_state.compare_exchange_strong(expected, kHostLoopWoken, std::memory_order_relaxed,
                                              std::memory_order_relaxed)) {
    return;
  }
  bump_shared(cpu.counters.doorbell_fd_writes);
  XCALL_TRACE_DOORBELL_RING(cpu.id, kFd);
  const std::uint64_t one = 1;
  // The host is inside its loop_wait until it has read this write, so the
  // descriptor is open. eventfd's counter cannot overflow at one per claim.
  while (::write(cpu.doorbell_fd.load(std::memory_order_relaxed), &one, sizeof(one)) < 0 &&
         errno == EINTR) {
  }
}

}  // namespace xcall::detail

namespace xcall {

loop_wait::loop_wait() noexcept {
  detail::thread_context& ctx = detail::this_thread_context();
  detail::cpu_state* const c = ctx.current();
  if (c == nullptr || ctx.proxying() || ctx.irqs_off() || ctx.loop_waiting != nullptr ||
      c->doorbell_fd.load(std::memory_order_relaxed) < 0) {
    return;  // inert: see xcall/cpu.hpp
  }
  resume_state_ = c->host_state.load(std::memory_order_relaxed);
  c->host_state.store(detail::kHostLoopBlocked, std::memory_order_relaxed);
  // seq_cst fence: pairs with the sender's push and seq_cst load in
  // ring_after_push() (doorbell.hpp; edge 6 of docs/memory-ordering.md): a sender
  // that pushed before it is seen below; a later one sees "loop-blocked".
  detail::store_load_fence();
  may_block_ = !c->has_calls();
  ctx.loop_waiting = c;
  cpu_ = c;
}

loop_wait::~loop_wait() {
  if (cpu_ == nullptr) return;
  auto* const c = static_cast<detail::cpu_state*>(cpu_);
  detail::thread_context& ctx = detail::this_thread_context();
  ctx.loop_waiting = nullptr;
  // exchange, not a store: ordered with a sender's claim (fd_doorbell.hpp).
  if (c->host_state.exchange(resume_state_, std::memory_order_relaxed) !=
      detail::kHostLoopBlocked) {
    detail::read_doorbell_fd(c->doorbell_fd.load(std::memory_order_relaxed));
  }
  poll();  // the end of the wait is a safe point
}

}  // namespace xcall
