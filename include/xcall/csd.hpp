// xcall/csd.hpp — call_single_data, the call descriptor (the kernel's
// `call_single_data_t`).
//
// A descriptor carries one function call to one CPU. xcall fills its own
// descriptors for the ordinary calls (on the caller's stack for a waiting
// single call, in per-caller storage otherwise); an application fills one itself only
// for domain::call_function_single_async(), where it owns the descriptor and
// may reuse it as soon as in_flight() turns false.
//
// Thread safety: `func` and `info` belong to the owner while the descriptor is
// not in flight and must not be touched while it is. in_flight() may be called
// from any thread at any time.
//
// Memory ordering: when in_flight() returns false after the descriptor was
// queued, everything the function did before the descriptor was released is
// visible to the thread that saw it false (acquire, pairing with the release
// that ends the flight). For an async call the target releases the descriptor
// *before* running the function (the kernel's rule, so that the function may
// queue its own descriptor again), so in_flight() == false says the call has
// started, not that it has finished. (An async call addressed to the caller's
// own CPU is run locally: it has finished when the call returns.)
#pragma once

#include <atomic>
#include <cstdint>

#include "xcall/export.h"
#include "xcall/types.hpp"

namespace xcall {

namespace detail {
class csd_ops;
}

struct XCALL_EXPORT call_single_data {
  call_func_t func = nullptr;
  void* info = nullptr;

  call_single_data() = default;
  call_single_data(call_func_t f, void* i) noexcept : func(f), info(i) {}
  // A descriptor's identity is its address (it is linked into queues).
  call_single_data(const call_single_data&) = delete;
  call_single_data& operator=(const call_single_data&) = delete;

  /// True from the moment a call queues it until the target releases it.
  bool in_flight() const noexcept;

 private:
  friend class detail::csd_ops;
  // Queue link; written by the queuing thread before the release push,
  // read by the draining host after its acquire take (see call_queue.hpp).
  call_single_data* next_ = nullptr;
  // Lock protocol word (csd_lock / csd_unlock); bit layout in src/csd_ops.hpp.
  std::atomic<std::uint32_t> flags_{0};
  // The target of the current flight, for stall reports; written by the
  // queuing thread before the push, read by that thread only.
  cpu_t dst_ = no_cpu;
};

}  // namespace xcall
