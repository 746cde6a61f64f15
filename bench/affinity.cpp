// affinity.cpp — host CPU choice and pinning (affinity.hpp).
#include "affinity.hpp"

#include <pthread.h>
#include <sched.h>

namespace xcall::bench {
namespace {

std::vector<int> g_allowed;
cpu_set_t g_startup_set;

void set_affinity(const cpu_set_t& set) {
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

}  // namespace

void save_startup_affinity() {
  CPU_ZERO(&g_startup_set);
  g_allowed.clear();
  if (sched_getaffinity(0, sizeof(g_startup_set), &g_startup_set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &g_startup_set)) g_allowed.push_back(i);
    }
  }
  if (g_allowed.empty()) g_allowed.push_back(0);
}

const std::vector<int>& allowed_cpus() { return g_allowed; }
unsigned host_cores() { return static_cast<unsigned>(g_allowed.size()); }

int target_core() { return g_allowed[0]; }
int caller_core() { return g_allowed[1 % g_allowed.size()]; }

int producer_core(unsigned k) {
  if (g_allowed.size() == 1) return g_allowed[0];
  return g_allowed[1 + k % (g_allowed.size() - 1)];
}

void pin_self(int host_cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(host_cpu, &one);
  set_affinity(one);
}

void unpin_self() { set_affinity(g_startup_set); }

}  // namespace xcall::bench
