// percpu_engine.cpp — multi-CPU calls over the per-CPU queues (Linux 3.9+):
// one descriptor per target from the caller's storage, pushed onto the
// target's own queue, a doorbell only when that queue was empty; with wait,
// the caller waits on each descriptor it actually queued.
//
// Ordering: each push is a release that the target's take acquires
// (call_queue.hpp); each wait is an acquire of the target's release of the
// descriptor (csd_ops.hpp, waiting.cpp). A target that went offline between
// the snapshot and the push refuses the push (its queue is closed), so it is
// dropped from the targets and never waited for: guarantee 3.
#include "csd_ops.hpp"
#include "domain_impl.hpp"

namespace xcall::detail {

std::error_code domain_impl::queue_many(caller_storage& st, call_func_t func, void* info,
                                        bool wait) {
  if (st.targets.none()) return {};  // nothing to do, and nothing to allocate
  padded_csd* csds = st.many();
  if (csds == nullptr) return std::make_error_code(std::errc::not_enough_memory);
  for (cpu_t c : st.targets) {
    call_single_data& csd = csds[c].csd;
    wait_unlocked(csd);  // csd_lock: the previous call through it is done
    csd.func = func;
    csd.info = info;
    csd_ops::lock(csd, wait);
    if (!queue_on(c, csd)) st.targets.reset(c);  // went offline: not a target
  }
  return {};
}

void domain_impl::wait_many(caller_storage& st) {
  if (st.targets.none()) return;
  padded_csd* csds = st.many();
  for (cpu_t c : st.targets) wait_unlocked(csds[c].csd);
}

}  // namespace xcall::detail
