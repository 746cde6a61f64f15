// hosting.cpp — who runs a CPU: owned CPU threads and their idle loop, and
// attached application threads (attach/detach). Going online and offline,
// and hotplug requests, are hotplug.cpp.
//
// Ordering:
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
#include "error.hpp"
#include "fd_doorbell.hpp"
#include "futex.hpp"
#include "signal_doorbell.hpp"
#include "thread_context.hpp"

namespace xcall::detail {
namespace {

[[noreturn]] void attach_failed(cpu_t id, std::errc e, const std::string& why) {
  throw std::system_error(err(e), "xcall::domain::attach(" + std::to_string(id) + "): " + why);
}

/// "thread 'name' (tid N)" for the host of `c`, read from /proc: a racing
/// attach may not have written the host's identity yet (tid 0), and a
/// pthread_t of a thread that has exited is not safe to use.
std::string host_name(const cpu_state& c) {
  const pid_t tid = c.host_tid.load(std::memory_order_relaxed);
  if (tid == 0) return "another thread (attaching it now)";
  std::string name;
  if (FILE* f = std::fopen(("/proc/self/task/" + std::to_string(tid) + "/comm").c_str(), "r")) {
    char buf[32] = "";
    if (std::fgets(buf, sizeof(buf), f) != nullptr) name = buf;
    std::fclose(f);
  }
  while (!name.empty() && name.back() == '\n') name.pop_back();
  return "thread '" + (name.empty() ? std::string("?") : name) + "' (tid " + std::to_string(tid) +
         ")";
}

/// Ends the process, naming the CPU, when a thread exits while it still
/// hosts an attached CPU (its attachment was moved to another thread): the
/// CPU would stay online with nobody to run its calls.
struct host_exit_check {
  ~host_exit_check() {
    const thread_context& ctx = this_thread_context();
    const cpu_state* const c = ctx.parked != nullptr ? ctx.parked : ctx.current();
    if (c == nullptr || c->owned) return;
    std::fprintf(stderr,
                 "xcall: a thread exited while hosting CPU %u (its cpu_attachment lives on "
                 "elsewhere); end the attachment on the hosting thread before it exits\n",
                 c->id);
    std::abort();
  }
};

/// Registers this thread's exit check (once; allocates on first use).
void watch_host_thread_exit() {
  thread_local host_exit_check check;
  (void)&check;
}

/// Nesting depths of caller storage a signal host gets up front: functions
/// run in its signal handler must not allocate for calls they make.
constexpr unsigned kSignalStorageDepth = 4;

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
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) wait_served(cpus_[id], kControlRun);
}

void domain_impl::stop_owned_cpus() noexcept {
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    if (cpus_[id].thread.joinable()) post_request(cpus_[id], kControlExit);
  }
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    if (cpus_[id].thread.joinable()) cpus_[id].thread.join();
  }
}

void domain_impl::check_no_attached_cpus() const noexcept {
  for (cpu_t id = 0; id < nr_cpu_ids(); ++id) {
    if (!cpus_[id].hosted.load(std::memory_order_acquire)) continue;
    std::fprintf(stderr,
                 "xcall: domain destroyed while CPU %u is still attached by %s; "
                 "end the cpu_attachment first\n",
                 id, host_name(cpus_[id]).c_str());
    std::abort();
  }
}

void domain_impl::owned_cpu_main(cpu_state& c) {
  const std::string name = "xcall/" + std::to_string(c.id);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
  if (options_.pin_threads) pin_to_host_cpu(c.id);
  this_thread_context().host.store(&c, std::memory_order_relaxed);
  c.host_tid.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_relaxed);  // reports
  come_up(c);
  const auto has_work = [&c] { return c.has_calls(); };
  for (;;) {
    drain(c);  // serves hotplug requests first (hotplug.cpp)
    if (!online_.test(c.id)) {
      if (!park_offline(c)) break;
      continue;
    }
    idle_until(c, has_work, std::chrono::steady_clock::time_point::max(), kHostPolling);
  }
  c.host_tid.store(0, std::memory_order_relaxed);
  this_thread_context().host.store(nullptr, std::memory_order_relaxed);
}

int domain_impl::doorbell_signal() {
  std::lock_guard<std::mutex> lock(signal_mutex_);
  if (doorbell_signal_ == 0) doorbell_signal_ = install_doorbell_signal(options_.doorbell_signal);
  return doorbell_signal_;
}

void domain_impl::prepare_signal_storage(cpu_state& c) {
  for (unsigned depth = 0; depth < kSignalStorageDepth; ++depth) {
    caller_storage* const st = host_storage(c, depth);
    if (st == nullptr || st->many() == nullptr || st->ring_mask() == nullptr) {
      throw std::bad_alloc();
    }
    if (classic_ != nullptr && st->classic.block(nr_cpu_ids()) == nullptr) throw std::bad_alloc();
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
  if (how.delivery != delivery_mode::poll && how.delivery != delivery_mode::signal &&
      how.delivery != delivery_mode::fd) {
    attach_failed(id, std::errc::invalid_argument,
                  "attach_options::delivery is not a valid delivery_mode value");
  }
  thread_context& ctx = this_thread_context();
  if (cpu_state* mine = ctx.parked != nullptr ? ctx.parked : ctx.current()) {
    attach_failed(id, std::errc::device_or_resource_busy,
                  "this thread already hosts CPU " + std::to_string(mine->id) +
                      (mine->dom == this ? "" : " of another domain"));
  }
  // Before claiming the CPU: a signal that cannot be installed, or an
  // eventfd that cannot be made, leaves it free.
  const int signo = how.delivery == delivery_mode::signal ? doorbell_signal() : 0;
  const int fd = how.delivery == delivery_mode::fd ? open_doorbell_fd(id) : -1;
  cpu_state& c = cpus_[id];
  bool expected = false;
  // acquire: pairs with the release store in detach().
  if (!c.hosted.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
    if (fd >= 0) ::close(fd);
    attach_failed(id, std::errc::device_or_resource_busy,
                  "CPU " + std::to_string(id) + " is already hosted by " + host_name(c));
  }
  try {
    if (signo != 0) prepare_signal_storage(c);
  } catch (...) {
    c.hosted.store(false, std::memory_order_release);
    throw;
  }
  c.doorbell_fd.store(fd, std::memory_order_relaxed);
  c.host_pid.store(getpid(), std::memory_order_relaxed);
  c.host_tid.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_relaxed);
  c.doorbell_signo.store(signo, std::memory_order_relaxed);
  c.proxy.store(how.proxy, std::memory_order_relaxed);
  if (signo != 0 || how.proxy) attention_hosts_.fetch_add(1, std::memory_order_relaxed);
  c.host_state.store(kHostRunning, std::memory_order_relaxed);
  c.irqs_off.store(ctx.irqs_off(), std::memory_order_relaxed);  // attached inside a guard
  ctx.host.store(&c, std::memory_order_relaxed);
  watch_host_thread_exit();
  bring_online(c);  // opens the queue: publishes the fields above to senders
}

void domain_impl::detach(cpu_t id) {
  cpu_state& c = cpus_[id];
  thread_context& ctx = this_thread_context();
  if (ctx.current() != &c || ctx.proxying()) {
    std::fprintf(stderr,
                 "xcall: cpu_attachment of CPU %u ended on a thread that does not host it%s; "
                 "an attachment must end on the thread that attached, outside any "
                 "blocking_region\n",
                 id, ctx.parked == &c ? " (it is inside a blocking_region)" : "");
    std::abort();
  }
  if (ctx.loop_waiting == &c) {
    std::fprintf(stderr,
                 "xcall: cpu_attachment of CPU %u ended inside a loop_wait; end the loop_wait "
                 "first (a sender may be writing the doorbell fd the attachment closes)\n",
                 id);
    std::abort();
  }
  if (ctx.doorbell_masked.load(std::memory_order_relaxed) != 0) {
    // Inside a drain, a wait or a doorbell handler of this very CPU: the
    // code we would return into still uses the CPU, and a new host could
    // attach and run its calls at the same time.
    std::fprintf(stderr,
                 "xcall: cpu_attachment of CPU %u ended inside a function run by a call (or "
                 "inside xcall's own wait, poll or stall callback); end an attachment in the "
                 "host's own code, outside any call\n",
                 id);
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
    c.host_tid.store(0, std::memory_order_relaxed);
    c.irqs_off.store(false, std::memory_order_relaxed);  // a guard may outlive the attachment
    // Offline, the queue is closed and the host is not in a loop_wait: no
    // sender can claim a wake-up, so nobody writes the descriptor any more.
    if (const int fd = c.doorbell_fd.exchange(-1, std::memory_order_relaxed); fd >= 0) {
      ::close(fd);
    }
  }
  // release: pairs with the acquire CAS in attach().
  c.hosted.store(false, std::memory_order_release);
}

}  // namespace xcall::detail
