// hotplug.cpp — CPUs going offline and online (the kernel's cpu_down/cpu_up
// and smpcfd_dying_cpu): the host's transitions, and the requests that ask
// an owned CPU's thread for them.
//
// Coming online: the host opens the queue, then sets the online bit. Going
// offline: the host clears the online bit, then closes the queue, taking what
// was queued, and runs it. A caller whose snapshot still had the CPU either
// pushed before the close (its call runs in that final drain) or finds the
// queue closed and drops the target: no call waits for a CPU that is gone.
//
// Requests. cpu_down/cpu_up may be made by functions that calls run, so a
// requester may be running inside the very wait of the CPU it asks, or
// inside another request's wait on its own thread. So nothing is held while
// a requester waits, and the host serves requests wherever it drains, not
// only in its idle loop. A request is a word, sequence << 2 | what, set by a
// CAS (the latest request wins); the host serves the latest word it finds and
// publishes it in control_done; a requester returns once control_done is its
// word or a later one. Serving is re-entrant: the state flip itself runs no
// calls, and a request served inside a drain of a going-offline CPU's calls
// continues that drain.
//
// Ordering:
//  - control: release CAS in post_request(), acquire load in
//    serve_hotplug(); ring_doorbell() after the CAS runs the doorbell
//    handshake (doorbell.hpp), so a sleeping or waiting host sees it.
//  - control_done: release store in serve_hotplug() after the transition
//    and its drain; acquire load in wait_served(): a requester returns after
//    the calls the transition ran.
#include <climits>
#include <mutex>

#include "csd_ops.hpp"
#include "doorbell.hpp"
#include "domain_impl.hpp"
#include "error.hpp"
#include "fault_injection.hpp"
#include "futex.hpp"
#include "thread_context.hpp"
#include "trace.hpp"

namespace xcall::detail {
namespace {

control_value what(std::uint32_t request) noexcept {
  return static_cast<control_value>(request & 3u);
}

/// Whether request word `done` is `want` or later: sequence numbers compare
/// in serial-number arithmetic (far fewer than 2^29 requests are ever in
/// flight at once), so a wrapped sequence still orders correctly.
bool served(std::uint32_t done, std::uint32_t want) noexcept {
  if (what(done) == kControlNotStarted) return false;
  return static_cast<std::int32_t>((done & ~3u) - (want & ~3u)) >= 0;
}

}  // namespace

void domain_impl::bring_online(cpu_state& c) noexcept {
  c.queue.open();
  online_.set(c.id);
  XCALL_TRACE_CPU_ONLINE(c.id);
}

void domain_impl::take_offline(cpu_state& c) noexcept {
  online_.reset(c.id);
  XCALL_TRACE_CPU_OFFLINE(c.id);
  // Pushes after the close fail; what it took runs after what an outer
  // drain took earlier (older calls first).
  call_single_data* const taken = c.queue.close();
  call_single_data** tail = &c.batch;
  while (*tail != nullptr) tail = &csd_ops::next(**tail);
  *tail = taken;
  if (classic_ != nullptr) classic_cpu_dying(c);
}

void domain_impl::finish_offline(cpu_state& c) noexcept {
  unsigned ran = run_batch(c);
  if (classic_ != nullptr) ran += classic_walk(c);
  bump(c.counters.drained_on_down, ran);
}

void domain_impl::go_offline(cpu_state& c) noexcept {
  take_offline(c);
  finish_offline(c);
}

void domain_impl::come_up(cpu_state& c) noexcept {
  bring_online(c);
  // The first request word (0: run); the first drain serves any later one.
  publish_served(c, c.control_seen);
}

void domain_impl::publish_served(cpu_state& c, std::uint32_t request) noexcept {
  // A request served in a nested drain may be later than the one an outer
  // transition finishes now: never move control_done back.
  const std::uint32_t done = c.control_done.load(std::memory_order_relaxed);
  if (served(done, request)) return;
  // release: pairs with the acquire in wait_served(); the transition and
  // the calls it ran happen-before the requester returns.
  c.control_done.store(request, std::memory_order_release);
  futex_wake(&c.control_done, INT_MAX);
}

void domain_impl::serve_hotplug(cpu_state& c) noexcept {
  for (;;) {
    // acquire: pairs with the release CAS in post_request().
    const std::uint32_t request = c.control.load(std::memory_order_acquire);
    if (request == c.control_seen || c.in_transition) return;
    c.control_seen = request;
    const bool want_online = what(request) == kControlRun;
    if (want_online != online_.test(c.id)) {
      c.in_transition = true;  // the flip runs no calls, but may take a lock
      if (want_online) {
        bring_online(c);
      } else {
        take_offline(c);
      }
      c.in_transition = false;
    }
    // Going offline means "has run what was queued": the drain below may
    // nest (a function that waits), and a request served in there continues
    // it, so every request is published only after the calls before it ran.
    if (!want_online) finish_offline(c);
    publish_served(c, request);
  }
}

bool domain_impl::park_offline(cpu_state& c) noexcept {
  for (;;) {
    serve_hotplug(c);
    if (online_.test(c.id)) return true;
    if (what(c.control_seen) == kControlExit) return false;
    futex_wait(&c.control, c.control_seen);
  }
}

std::uint32_t domain_impl::post_request(cpu_state& c, control_value value) noexcept {
  std::uint32_t old = c.control.load(std::memory_order_relaxed);
  std::uint32_t request = 0;
  do {
    request = (((old >> 2) + 1) << 2) | value;
    // release: pairs with the acquire load in serve_hotplug().
  } while (!c.control.compare_exchange_weak(old, request, std::memory_order_release,
                                            std::memory_order_relaxed));
  ring_doorbell(c, /*may_be_lost=*/false);  // the host may sleep, or wait
  futex_wake(&c.control, INT_MAX);          // or be parked offline
  return request;
}

void domain_impl::wait_served(cpu_state& c, std::uint32_t request) noexcept {
  // A requester that hosts (or holds) CPUs keeps running their calls and
  // serving their requests: the CPU's functions may wait for it.
  thread_context& ctx = this_thread_context();
  cpu_state* const self = drainable_self();
  for (;;) {
    // acquire: pairs with the release store in publish_served().
    const std::uint32_t done = c.control_done.load(std::memory_order_acquire);
    if (served(done, request)) return;
    if (self != nullptr || ctx.proxying()) {
      drain_acting(ctx, self);
      futex_wait(&c.control_done, done, std::chrono::microseconds(100));
    } else {
      futex_wait(&c.control_done, done);
    }
  }
}

std::error_code domain_impl::check_hotplug(cpu_t id, bool down) const noexcept {
  if (id >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (!cpus_[id].owned) return err(std::errc::operation_not_supported);
  // The request waits for the CPU, whose functions may wait for us: like a
  // waiting call, not inside an irq_guard.
  const thread_context& ctx = this_thread_context();
  if (ctx.irqs_off()) return err(std::errc::resource_deadlock_would_occur);
  // Our own CPU (or one we hold beneath a proxy) cannot go down while this
  // thread runs a function on it; coming up it serves itself.
  if (down && ctx.acts_for(&cpus_[id])) return err(std::errc::resource_deadlock_would_occur);
  return {};
}

std::error_code domain_impl::hotplug(cpu_t id, control_value value) {
  if (const std::error_code ec = check_hotplug(id, value == kControlDown)) return ec;
  cpu_state& c = cpus_[id];
  // The hotplug_mutex fault brings back the old design: serialise by
  // holding a mutex across the wait.
  std::unique_lock<std::mutex> fault_lock;
  if (XCALL_FAULT(hotplug_mutex)) fault_lock = std::unique_lock<std::mutex>(c.hotplug_mutex);
  wait_served(c, post_request(c, value));
  return {};
}

std::error_code domain_impl::cpu_down(cpu_t id) { return hotplug(id, kControlDown); }
std::error_code domain_impl::cpu_up(cpu_t id) { return hotplug(id, kControlRun); }

}  // namespace xcall::detail
