// fd_doorbell.hpp — the doorbell of delivery_mode::fd: an eventfd per
// attached CPU that the host's own event loop (epoll, poll(2), io_uring)
// waits on. Private to the library; the host's half is xcall::loop_wait
// (fd_doorbell.cpp).
//
// A host announces "about to block" (host_state = kHostLoopBlocked) only
// inside a loop_wait. A sender that finds it so claims the wake-up with a CAS
// to kHostLoopWoken and writes the eventfd; later senders of the burst see
// "woken" and write nothing (as for "polling"), and a stall report still
// says the host is blocked in its loop. The host's end of the loop_wait exchanges its
// state back: if the exchange finds the state claimed, it reads the eventfd
// (waiting for the claimer's write if it has not landed yet). So every write
// happens inside a loop_wait and is read before it ends: the descriptor is
// never readable when the host is not blocked, and no write can reach it
// after detach() closed it (model/doorbell_fd.pml).
//
// Ordering: the announcement is doorbell.hpp's store-then-load handshake
// (host: store kHostLoopBlocked ; seq_cst fence ; load the queue; sender:
// push ; seq_cst fence ; load host_state). The claim and the host's
// exchange are read-modify-writes of host_state, so one of them comes first
// in its modification order: either the exchange finds the state claimed
// (and a write owed), or the claim fails.
#pragma once

#include "cpu_state.hpp"

namespace xcall::detail {

/// A new eventfd for an attachment (non-blocking, close-on-exec); throws
/// std::system_error naming the CPU and the reason.
int open_doorbell_fd(cpu_t id);

/// The sender's half after the handshake's fence found kHostLoopBlocked:
/// claims the wake-up and writes the eventfd (nothing if another sender, or
/// the host's return, came first).
void write_doorbell_fd(cpu_state& cpu) noexcept;

/// The host's half at the end of a loop_wait whose wake-up was claimed:
/// reads the write it is owed, waiting for it if it has not landed yet.
void read_doorbell_fd(int fd) noexcept;

}  // namespace xcall::detail
