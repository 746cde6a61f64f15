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
//  - delivery fields (doorbell_signo, proxy, host_tid, ...): written by
//    attach() before bring_online() opens the queue with a release; a
//    sender's push acquires it (call_queue.hpp) before it reads them.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "xcall/cpu.hpp"
#include "doorbell.hpp"
#include "domain_impl.hpp"
#include "futex.hpp"
#include "signal_doorbell.hpp"
#include "thread_context.hpp"

namespace xcall::detail {
namespace {

std::error_code err(std::errc e) { return std::make_error_code(e); }

[[noreturn]] void attach_failed(cpu_t id, std::errc e, const std::string& why) {
  throw std::system_error(err(e), "xcall::domain::attach(" + std::to_string(id) + "): " + why);
}

std::string thread_name(pthread_t thread) {
  char name[32] = "?";
  pthread_getname_np(thread, name, sizeof(name));
  return name;
}

/// Nesting depths of caller storage a signal host gets up front: functions
/// run in its signal handler must not allocate for calls they make.
constexpr unsigned kSignalStorageDepth = 4;

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
    std::fprintf(stderr,
                 "xcall: domain destroyed while CPU %u is still attached by thread '%s'; "
                 "end the cpu_attachment first\n",
                 id, thread_name(cpus_[id].host_thread).c_str());
    std::abort();
  }
}

void domain_impl::owned_cpu_main(cpu_state& c) {
  const std::string name = "xcall/" + std::to_string(c.id);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (options_.pin_threads) pin_to_host_cpu(c.id);
  this_thread_context().host.store(&c, std::memory_order_relaxed);
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
  this_thread_context().host.store(nullptr, std::memory_order_relaxed);
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

int domain_impl::doorbell_signal() {
  std::lock_guard<std::mutex> lock(signal_mutex_);
  if (doorbell_signal_ == 0) doorbell_signal_ = install_doorbell_signal(options_.doorbell_signal);
  return doorbell_signal_;
}

void domain_impl::prepare_signal_storage(cpu_state& c) {
  for (unsigned depth = 0; depth < kSignalStorageDepth; ++depth) {
    caller_storage& st = host_storage(c, depth);
    st.many();
    if (options_.engine_kind == engine::classic) st.block();
  }
}

void domain_impl::attach(cpu_t id, const attach_options& how) {
  if (options_.start_threads) {
    attach_failed(id, std::errc::operation_not_supported,
                  "the domain starts its own CPU threads (domain_options::start_threads)");
  }
  if (id >= nr_cpu_ids()) {
    attach_failed(id, std::errc::no_such_device_or_address,
                  "no such CPU; the domain has CPUs 0.." + std::to_string(nr_cpu_ids() - 1));
  }
  if (how.delivery != delivery_mode::poll && how.delivery != delivery_mode::signal) {
    attach_failed(id, std::errc::invalid_argument,
                  "attach_options::delivery is not a valid delivery_mode value");
  }
  thread_context& ctx = this_thread_context();
  if (cpu_state* mine = ctx.parked != nullptr ? ctx.parked : ctx.current()) {
    attach_failed(id, std::errc::device_or_resource_busy,
                  "this thread already hosts CPU " + std::to_string(mine->id) +
                      (mine->dom == this ? "" : " of another domain"));
  }
  // Before claiming the CPU: a signal that cannot be installed leaves it free.
  const int signo = how.delivery == delivery_mode::signal ? doorbell_signal() : 0;
  cpu_state& c = cpus_[id];
  bool expected = false;
  // acquire: pairs with the release store in detach().
  if (!c.hosted.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
    attach_failed(id, std::errc::device_or_resource_busy,
                  "CPU " + std::to_string(id) + " is already hosted by thread '" +
                      thread_name(c.host_thread) + "'");
  }
  try {
    if (signo != 0) prepare_signal_storage(c);
  } catch (...) {
    c.hosted.store(false, std::memory_order_release);
    throw;
  }
  c.host_thread = pthread_self();
  c.host_pid.store(getpid(), std::memory_order_relaxed);
  c.host_tid.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_relaxed);
  c.doorbell_signo.store(signo, std::memory_order_relaxed);
  c.proxy.store(how.proxy, std::memory_order_relaxed);
  if (signo != 0 || how.proxy) attention_hosts_.fetch_add(1, std::memory_order_relaxed);
  c.host_state.store(kHostRunning, std::memory_order_relaxed);
  ctx.host.store(&c, std::memory_order_relaxed);
  bring_online(c);  // opens the queue: publishes the fields above to senders
}

void domain_impl::detach(cpu_t id) {
  cpu_state& c = cpus_[id];
  thread_context& ctx = this_thread_context();
  if (ctx.current() != &c || ctx.proxying) {
    std::fprintf(stderr,
                 "xcall: cpu_attachment of CPU %u ended on a thread that does not host it%s; "
                 "an attachment must end on the thread that attached, outside any "
                 "blocking_region\n",
                 id, ctx.parked == &c ? " (it is inside a blocking_region)" : "");
    std::abort();
  }
  {
    doorbell_mask mask;  // going offline runs calls: no handler meanwhile
    go_offline(c);
    if (c.doorbell_signo.load(std::memory_order_relaxed) != 0 ||
        c.proxy.load(std::memory_order_relaxed)) {
      attention_hosts_.fetch_sub(1, std::memory_order_relaxed);
    }
    // A signal still in flight finds no host here, and returns.
    ctx.host.store(nullptr, std::memory_order_relaxed);
    c.doorbell_signo.store(0, std::memory_order_relaxed);
    c.proxy.store(false, std::memory_order_relaxed);
  }
  // release: pairs with the acquire CAS in attach().
  c.hosted.store(false, std::memory_order_release);
}

}  // namespace xcall::detail
