// thread_context.hpp — the calling thread's CPU context: the CPU it hosts,
// its soft interrupt mask depth and its call nesting depth. Private.
//
// Ordering: thread-local, no atomics.
#pragma once

namespace xcall::detail {

struct cpu_state;
class domain_impl;

struct thread_context {
  cpu_state* host = nullptr;  ///< the CPU this thread hosts, if any
  unsigned irq_depth = 0;     ///< live irq_guards
  unsigned call_depth = 0;    ///< calls in progress that use host caller storage
};

/// This thread's context. Defined in cpu.cpp.
thread_context& this_thread_context() noexcept;

}  // namespace xcall::detail
