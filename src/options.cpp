// options.cpp — validation of domain_options: every rejected option is named
// in the std::invalid_argument it throws.
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
    reject("nr_cpus", std::to_string(requested) + " is above the maximum of " +
                          std::to_string(kMaxCpus));
  }
  if (requested != 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : (hw > kMaxCpus ? kMaxCpus : hw);
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
    reject("idle_spin", std::to_string(options.idle_spin.count()) +
                            " ns is outside 0 ns .. 1 s");
  }
  switch (options.engine_kind) {
    case engine::percpu:
      break;
    case engine::classic:
      reject("engine_kind", "engine::classic is not implemented yet; use engine::percpu");
    default:
      reject("engine_kind", "not a valid engine value");
  }
  return resolved;
}

}  // namespace xcall::detail
