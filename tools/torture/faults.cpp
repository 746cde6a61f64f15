// faults.cpp — parsing and arming --fault values.
//
// Ordering: the library's fault words are relaxed atomics set before any
// thread that reads them starts (the domain is built afterwards).
#include "faults.hpp"

#include <cstdlib>
#include <iterator>

#if defined(XCALL_FAULT_INJECTION)
#include "fault_injection.hpp"
#endif

namespace xcall_torture {
namespace {

struct fault_spec {
  std::string name;
  unsigned long param = 1;
};

constexpr const char* kNames[] = {"skip_seed_fix",      "widen_mask_window",  "drop_doorbell",
                                  "clear_after_run",    "borrow_second_slot", "hotplug_mutex",
                                  "fail_alloc",         "widen_proxy_window", "skip_proxy_recheck",
                                  "skip_wake_relay",    "proxy_one_target",   "help_own_wait_only",
                                  "forget_guarded_help"};

/// "a, b, c" of every fault name, for the error that names an unknown one.
std::string known_names() {
  std::string all;
  for (const char* n : kNames) all += (all.empty() ? "" : ", ") + std::string(n);
  return all;
}

bool parse(const std::string& spec, fault_spec& out, std::string& why) {
  const auto eq = spec.find('=');
  out.name = spec.substr(0, eq);
  bool known = false;
  for (const char* n : kNames) known = known || out.name == n;
  if (!known) {
    why = "unknown fault '" + out.name + "' (" + known_names() + ")";
    return false;
  }
  if (eq != std::string::npos) {
    const std::string p = spec.substr(eq + 1);
    char* end = nullptr;
    out.param = std::strtoul(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || p[0] == '-' || out.param == 0 || out.param > 1000000) {
      why = "fault parameter '" + p + "' must be a whole number from 1 to 1000000";
      return false;
    }
  }
  return true;
}

}  // namespace

bool faults_available() noexcept {
#if defined(XCALL_FAULT_INJECTION)
  return true;
#else
  return false;
#endif
}

std::string check_fault(const std::string& spec) {
  if (!faults_available()) {
    return "this build has no fault injection; use xcall-torture-faults (built with "
           "XCALL_FAULT_INJECTION=ON)";
  }
  fault_spec f;
  std::string why;
  return parse(spec, f, why) ? std::string() : why;
}

void arm_faults(const std::vector<std::string>& specs) {
#if defined(XCALL_FAULT_INJECTION)
  namespace fault = xcall::detail::fault;
  for (const std::string& spec : specs) {
    fault_spec f;
    std::string why;
    if (!parse(spec, f, why)) continue;  // checked when parsed
    constexpr fault::kind kinds[] = {
        fault::kind::skip_seed_fix,       fault::kind::widen_mask_window,
        fault::kind::drop_doorbell,       fault::kind::clear_after_run,
        fault::kind::borrow_second_slot,  fault::kind::hotplug_mutex,
        fault::kind::fail_alloc,          fault::kind::widen_proxy_window,
        fault::kind::skip_proxy_recheck,  fault::kind::skip_wake_relay,
        fault::kind::proxy_one_target,    fault::kind::help_own_wait_only,
        fault::kind::forget_guarded_help,
    };
    static_assert(std::size(kinds) == std::size(kNames), "one kind per name");
    for (std::size_t i = 0; i < std::size(kNames); ++i) {
      if (f.name == kNames[i]) fault::arm(kinds[i], static_cast<unsigned>(f.param));
    }
  }
#else
  (void)specs;
#endif
}

}  // namespace xcall_torture
