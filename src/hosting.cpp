// hosting.cpp — who runs a CPU: owned CPU threads and their idle loop,
// attached application threads, and hotplug (the kernel's cpu_up/cpu_down and
// smpcfd_dying_cpu).
//
// Coming online: the host opens the queue, then sets the online bit. Going
// offline: the host clears the online bit, then closes the queue, taking what
// was queued, and runs it. A caller whose snapshot still had the CPU either
// pushed before the close (its call runs in that final drain) or finds the
// queue closed and drops the target: no call waits for a CPU that is gone.
//
// Ordering:
//  - control: release store in request(), acquire load in the idle loop and
//    in park_offline(); the store is followed by ring_doorbell(), whose fence
//    pairs with host_sleep()'s (doorbell.hpp), so a sleeping host sees it.
//  - online_ack: release store by the host after it came up / went down,
//    acquire load in wait_ack(): the requester returns after the final drain.
//  - hosted (attached CPUs): acquire CAS in attach(), release store at
//    detach: the next host sees the caller storage the previous one left.
#include <pthread.h>
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "xcall/cpu.hpp"
#include "doorbell.hpp"
#include "domain_impl.hpp"
#include "futex.hpp"
#include "thread_context.hpp"

namespace xcall::detail {
namespace {

std::error_code err(std::errc e) { return std::make_error_code(e); }

cpu_t outside_slot_count(cpu_t nr_cpus) {
  const cpu_t hw = std::thread::hardware_concurrency();
  const cpu_t wanted = 4 * (hw == 0 ? 1 : hw) + nr_cpus;
  return wanted < 16 ? 16 : (wanted > 1024 ? 1024 : wanted);
}

/// Owned CPU i runs on the i-th allowed host CPU, modulo their number.
void pin_to_host_cpu(cpu_t id) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &allowed)) cpus.push_back(i);
  }
  if (cpus.empty()) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus[id % cpus.size()], &one);
  pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
}

}  // namespace

domain_impl::domain_impl(const domain_options& options)
    : options_(validate_options(options)),
      online_(options_.nr_cpus),
      cpus_(std::make_unique<cpu_state[]>(options_.nr_cpus)),
      nr_slots_(outside_slot_count(options_.nr_cpus)),
      slots_(std::make_unique<outside_slot[]>(nr_slots_)) {
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    cpus_[id].dom = this;
    cpus_[id].id = id;
    cpus_[id].owned = options_.start_threads;
  }
  if (options_.start_threads) start_owned_cpus();
}

domain_impl::~domain_impl() {
  check_no_attached_cpus();
  stop_owned_cpus();
}

void domain_impl::start_owned_cpus() {
  try {
    for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
      cpu_state& c = cpus_[id];
      c.thread = std::thread([this, &c] { owned_cpu_main(c); });
    }
  } catch (...) {
    stop_owned_cpus();
    throw;
  }
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) wait_ack(cpus_[id], 1);
}

void domain_impl::stop_owned_cpus() noexcept {
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    if (cpus_[id].thread.joinable()) request(cpus_[id], kControlExit);
  }
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    if (cpus_[id].thread.joinable()) cpus_[id].thread.join();
  }
}

void domain_impl::check_no_attached_cpus() const noexcept {
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    if (!cpus_[id].hosted.load(std::memory_order_acquire)) continue;
    char name[32] = "?";
    pthread_getname_np(cpus_[id].host_thread, name, sizeof(name));
    std::fprintf(stderr,
                 "xcall: domain destroyed while CPU %u is still attached by thread '%s'; "
                 "end the cpu_attachment first\n",
                 id, name);
    std::abort();
  }
}

void domain_impl::owned_cpu_main(cpu_state& c) {
  const std::string name = "xcall/" + std::to_string(c.id);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (options_.pin_threads) pin_to_host_cpu(c.id);
  this_thread_context().host = &c;
  bring_online(c);
  const auto has_work = [&c] {
    return c.has_calls() || c.control.load(std::memory_order_relaxed) != kControlRun;
  };
  for (;;) {
    drain(c);
    // acquire: pairs with the release store in request().
    if (c.control.load(std::memory_order_acquire) != kControlRun) {
      go_offline(c);
      if (!park_offline(c)) break;
      continue;
    }
    idle_until(c, has_work, std::chrono::steady_clock::time_point::max(), kHostPolling);
  }
  this_thread_context().host = nullptr;
}

void domain_impl::bring_online(cpu_state& c) noexcept {
  c.queue.open();
  online_.set(c.id);
  // release: pairs with the acquire in wait_ack().
  c.online_ack.store(1, std::memory_order_release);
  futex_wake(&c.online_ack, INT32_MAX);
}

void domain_impl::go_offline(cpu_state& c) noexcept {
  online_.reset(c.id);
  // The dying CPU runs what was queued for it; pushes after the close fail.
  unsigned ran = run_batch(c);
  c.batch = c.queue.close();
  ran += run_batch(c);
  bump(c.drained_on_down, ran);
  if (options_.engine_kind == engine::classic) classic_cpu_dying(c);
  // release: pairs with the acquire in wait_ack().
  c.online_ack.store(0, std::memory_order_release);
  futex_wake(&c.online_ack, INT32_MAX);
}

bool domain_impl::park_offline(cpu_state& c) noexcept {
  for (;;) {
    // acquire: pairs with the release store in request().
    const std::uint32_t ctl = c.control.load(std::memory_order_acquire);
    if (ctl == kControlExit) return false;
    if (ctl == kControlRun) {
      bring_online(c);
      return true;
    }
    futex_wait(&c.control, ctl);
  }
}

void domain_impl::request(cpu_state& c, control_value value) noexcept {
  // release: pairs with the acquire loads in the idle loop / park_offline().
  c.control.store(value, std::memory_order_release);
  ring_doorbell(c, /*may_be_lost=*/false);  // the host may sleep in its idle loop
  futex_wake(&c.control, INT32_MAX);      // or be parked offline
}

void domain_impl::wait_ack(cpu_state& c, std::uint32_t want) noexcept {
  // A host requester keeps running its own calls: the dying CPU's last
  // functions may wait for it.
  cpu_state* const self = drainable_self();
  for (;;) {
    // acquire: pairs with the release stores in bring_online()/go_offline().
    const std::uint32_t ack = c.online_ack.load(std::memory_order_acquire);
    if (ack == want) return;
    if (self != nullptr) {
      drain(*self);
      futex_wait(&c.online_ack, ack, std::chrono::microseconds(100));
    } else {
      futex_wait(&c.online_ack, ack);
    }
  }
}

std::error_code domain_impl::cpu_down(cpu_t id) {
  if (id >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (!cpus_[id].owned) return err(std::errc::operation_not_supported);
  if (id == self_cpu()) return err(std::errc::resource_deadlock_would_occur);
  std::lock_guard<std::mutex> lock(cpus_[id].hotplug_mutex);
  request(cpus_[id], kControlDown);
  wait_ack(cpus_[id], 0);
  return {};
}

std::error_code domain_impl::cpu_up(cpu_t id) {
  if (id >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  if (!cpus_[id].owned) return err(std::errc::operation_not_supported);
  std::lock_guard<std::mutex> lock(cpus_[id].hotplug_mutex);
  request(cpus_[id], kControlRun);
  wait_ack(cpus_[id], 1);
  return {};
}

std::error_code domain_impl::attach(cpu_t id) {
  if (options_.start_threads) return err(std::errc::operation_not_supported);
  if (id >= nr_cpu_ids()) return err(std::errc::no_such_device_or_address);
  thread_context& ctx = this_thread_context();
  if (ctx.host != nullptr) return err(std::errc::device_or_resource_busy);
  cpu_state& c = cpus_[id];
  bool expected = false;
  // acquire: pairs with the release store in detach().
  if (!c.hosted.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
    return err(std::errc::device_or_resource_busy);
  }
  c.host_thread = pthread_self();
  c.host_state.store(kHostRunning, std::memory_order_relaxed);
  ctx.host = &c;
  bring_online(c);
  return {};
}

void domain_impl::detach(cpu_t id) {
  cpu_state& c = cpus_[id];
  thread_context& ctx = this_thread_context();
  if (ctx.host != &c) {
    std::fprintf(stderr,
                 "xcall: cpu_attachment of CPU %u ended on a thread that does not host it; "
                 "an attachment must end on the thread that attached\n",
                 id);
    std::abort();
  }
  go_offline(c);
  ctx.host = nullptr;
  // release: pairs with the acquire CAS in attach().
  c.hosted.store(false, std::memory_order_release);
}

}  // namespace xcall::detail
