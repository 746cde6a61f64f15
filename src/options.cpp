// options.cpp — validation of domain_options: every rejected option is named
// in the std::invalid_argument it throws.
#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "domain_impl.hpp"

namespace xcall::detail {
namespace {

[[noreturn]] void reject(const char* option, const std::string& why) {
  throw std::invalid_argument(std::string("xcall::domain_options::") + option + ": " + why);
}

cpu_t resolve_nr_cpus(cpu_t requested) {
  if (requested > kMaxCpus) {
    reject("nr_cpus",
           std::to_string(requested) + " is above the maximum of " + std::to_string(kMaxCpus));
  }
  if (requested != 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : (hw > kMaxCpus ? kMaxCpus : hw);
}

/// XCALL_STALL_TIMEOUT_MS, when set, overrides the option: a whole number of
/// milliseconds, 0 turning the watchdog off.
std::chrono::nanoseconds resolve_stall_timeout(std::chrono::nanoseconds option) {
  const char* env = std::getenv("XCALL_STALL_TIMEOUT_MS");
  if (env == nullptr) return option;
  char* end = nullptr;
  errno = 0;
  const unsigned long long ms = std::strtoull(env, &end, 10);
  if (*env == '\0' || *end != '\0' || errno != 0 || *env == '-' ||
      ms > 1000ull * 60 * 60 * 24 * 365) {
    throw std::invalid_argument(std::string("xcall: environment variable XCALL_STALL_TIMEOUT_MS=") +
                                env + " is not a number of milliseconds");
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace

domain_options validate_options(const domain_options& options) {
  domain_options resolved = options;
  resolved.nr_cpus = resolve_nr_cpus(options.nr_cpus);
  switch (options.idle) {
    case idle_mode::poll:
    case idle_mode::adaptive:
    case idle_mode::sleep:
      break;
    default:
      reject("idle", "not a valid idle_mode value");
  }
  if (options.idle_spin.count() < 0 || options.idle_spin > std::chrono::seconds(1)) {
    reject("idle_spin", std::to_string(options.idle_spin.count()) + " ns is outside 0 ns .. 1 s");
  }
  if (options.stall_timeout.count() < 0) {
    reject("stall_timeout", std::to_string(options.stall_timeout.count()) +
                                " ns is negative; 0 turns the watchdog off");
  }
  resolved.stall_timeout = resolve_stall_timeout(options.stall_timeout);
  if (options.doorbell_signal != 0 &&
      (options.doorbell_signal < SIGRTMIN || options.doorbell_signal > SIGRTMAX)) {
    reject("doorbell_signal", std::to_string(options.doorbell_signal) +
                                  " is not a real-time signal (" + std::to_string(SIGRTMIN) +
                                  " .. " + std::to_string(SIGRTMAX) + "); 0 picks a free one");
  }
  switch (options.engine_kind) {
    case engine::percpu:
    case engine::classic:
      break;
    default:
      reject("engine_kind", "not a valid engine value");
  }
  return resolved;
}

}  // namespace xcall::detail
