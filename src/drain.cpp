// drain.cpp — running what is queued for a CPU: the kernel's
// flush_smp_call_function_queue, the body of the IPI handler.
//
// Ordering: take_all() acquires the pushes (call_queue.hpp), so each function
// sees what its caller wrote before the call (guarantee 4, first half). A
// waiting call's descriptor is released after its function returns, a no-wait
// one before (the kernel's rule: the function may re-queue it); the release
// publishes the function's writes to a waiting caller (guarantee 4, second
// half), see waiting.cpp.
#include "csd_ops.hpp"
#include "domain_impl.hpp"

namespace xcall::detail {

unsigned domain_impl::drain(cpu_state& c) noexcept { return run_calls(c.queue.take_all()); }

unsigned domain_impl::run_calls(call_single_data* csd) noexcept {
  unsigned ran = 0;
  for (; csd != nullptr; ++ran) {
    // Read everything we need before the release: afterwards the owner may
    // refill the descriptor or free it.
    call_single_data* const next = csd_ops::next(*csd);
    const call_func_t func = csd->func;
    void* const info = csd->info;
    if (csd_ops::is_sync(*csd)) {
      func(info);
      release(*csd);
    } else {
      release(*csd);
      func(info);
    }
    csd = next;
  }
  return ran;
}

}  // namespace xcall::detail
