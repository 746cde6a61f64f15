// hosts.hpp — --attached: one application thread per CPU attaches itself as
// the CPU's host, runs its own loop (a little work, then xcall::poll() or
// xcall::idle_wait()), makes calls of its own from its CPU, and with
// --onoff-interval detaches and re-attaches now and then (attached CPUs'
// form of hotplug). At the end each detaches and leaves.
//
// Thread safety: one thread per CPU; start() returns once every CPU is
// attached; join() after run_state::stop_hosts.
#pragma once

#include <thread>
#include <vector>

#include "run_state.hpp"
#include "xcall/domain.hpp"

namespace xcall_torture {

class invoker;

class attached_hosts {
 public:
  explicit attached_hosts(run_state& run);
  ~attached_hosts();
  attached_hosts(const attached_hosts&) = delete;
  attached_hosts& operator=(const attached_hosts&) = delete;

  /// `invokers[i]` makes CPU i's own calls.
  void start(const std::vector<invoker*>& invokers);
  void join();

 private:
  void host_main(xcall::cpu_t cpu, invoker& inv);
  bool attach(xcall::cpu_t cpu, xcall::cpu_attachment& att);
  void detach(xcall::cpu_t cpu, xcall::cpu_attachment& att);

  run_state& run_;
  std::vector<std::thread> threads_;
  std::atomic<unsigned> ready_{0};
};

}  // namespace xcall_torture
