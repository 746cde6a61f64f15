// online.cpp — online generations and the hotplug lock (online.hpp).
//
// Ordering: see the header; each atomic below names its partner.
#include "online.hpp"

#include <chrono>
#include <thread>

#include "xcall/cpu.hpp"

namespace xcall_torture {
namespace {

// Write holds of this thread (the lock is reentrant for its writer).
thread_local unsigned t_writes = 0;

void backoff(unsigned& spins) {
  if (++spins < 64) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

}  // namespace

online_tracker::online_tracker(xcall::cpu_t nr_cpus, bool online)
    : gen_(std::make_unique<std::atomic<std::uint32_t>[]>(nr_cpus)) {
  for (xcall::cpu_t c = 0; c < nr_cpus; ++c) {
    gen_[c].store(online ? 0 : 2, std::memory_order_relaxed);  // before any thread starts
  }
}

void online_tracker::begin(xcall::cpu_t cpu) noexcept {
  // seq_cst: the odd value must precede the transition's first effect; the
  // transition's own release/acquire chain carries it to any observer.
  gen_[cpu].fetch_add(1, std::memory_order_seq_cst);
}

void online_tracker::end(xcall::cpu_t cpu, bool online) noexcept {
  // relaxed load: only this thread writes the generation during a transition.
  std::uint32_t g = gen_[cpu].load(std::memory_order_relaxed) + 1;  // even
  if ((g % 4 == 0) != online) g += 2;
  // release: pairs with the acquire in before(): the transition is complete.
  gen_[cpu].store(g, std::memory_order_release);
}

bool online_tracker::stable_online(xcall::cpu_t cpu) const noexcept {
  return gen_[cpu].load(std::memory_order_acquire) % 4 == 0;
}

live_mask::view online_tracker::before(xcall::cpu_t cpu) const noexcept {
  live_mask::view v;
  v.seq = gen_[cpu].load(std::memory_order_acquire);  // pairs with end()
  v.set = v.seq % 4 == 0;
  return v;
}

live_mask::view online_tracker::after(xcall::cpu_t cpu) const noexcept {
  live_mask::view v;
  // seq_cst, pairing with begin(): a transition the call observed started
  // before the observation, so its odd value is visible here.
  v.seq = gen_[cpu].load(std::memory_order_seq_cst);
  v.set = v.seq % 4 == 0;
  return v;
}

held online_tracker::classify(const live_mask::view& before,
                              const live_mask::view& after) noexcept {
  if (before.seq != after.seq || (before.seq & 1) != 0) return held::changed;
  return before.set ? held::set : held::clear;
}

bool hotplug_lock::try_read() noexcept {
  // relaxed: a hint only; the CAS below is what excludes the writer.
  if (writers_waiting_.load(std::memory_order_relaxed) != 0) return false;
  std::int32_t s = state_.load(std::memory_order_relaxed);
  while (s >= 0) {
    // acquire: pairs with the release in unwrite().
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void hotplug_lock::read() noexcept {
  unsigned spins = 0;
  while (!try_read()) backoff(spins);
}

void hotplug_lock::unread() noexcept {
  // release: pairs with the acquire CAS in try_write().
  state_.fetch_sub(1, std::memory_order_release);
}

bool hotplug_lock::try_write() noexcept {
  if (t_writes > 0) {
    ++t_writes;  // ours already
    return true;
  }
  std::int32_t idle = 0;
  // acquire: pairs with the release in unread()/unwrite().
  if (!state_.compare_exchange_strong(idle, -1, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
    return false;
  }
  t_writes = 1;
  return true;
}

void hotplug_lock::write() noexcept {
  if (try_write()) return;
  writers_waiting_.fetch_add(1, std::memory_order_relaxed);
  unsigned spins = 0;
  while (!try_write()) backoff(spins);
  writers_waiting_.fetch_sub(1, std::memory_order_relaxed);
}

void hotplug_lock::write_polling() noexcept {
  if (try_write()) return;
  writers_waiting_.fetch_add(1, std::memory_order_relaxed);
  unsigned spins = 0;
  while (!try_write()) {
    xcall::poll();  // we host a CPU: a reader's call may be waiting for us
    backoff(spins);
  }
  writers_waiting_.fetch_sub(1, std::memory_order_relaxed);
}

void hotplug_lock::unwrite() noexcept {
  if (--t_writes > 0) return;  // an inner hold on this thread
  // release: pairs with the acquire CAS in try_read()/try_write().
  state_.store(0, std::memory_order_release);
}

}  // namespace xcall_torture
