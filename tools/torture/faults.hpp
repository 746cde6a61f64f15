// faults.hpp — --fault NAME[=PARAM]: arms one of the library's injected faults
// (src/fault_injection.hpp: skip_seed_fix, widen_mask_window, drop_doorbell,
// clear_after_run, borrow_second_slot, hotplug_mutex, fail_alloc) before the
// domain is built, to show that the torture test fails when the library is
// broken. fail_alloc is the exception: allocation failure is a legal outcome
// (ENOMEM from calls, bad_alloc from attach), so the run must still succeed,
// counting them (run_state::enomem_ok). Only the xcall-torture-faults build, linked to the
// never-installed xcall_fault_injection library, has them; elsewhere the
// option is refused with a message saying so.
//
// Thread safety: main thread only, before any other thread starts.
#pragma once

#include <string>
#include <vector>

namespace xcall_torture {

/// Whether this build can arm faults.
bool faults_available() noexcept;
/// Checks one --fault value: empty if fine, else what is wrong with it.
std::string check_fault(const std::string& spec);
/// Arms every fault (each already checked).
void arm_faults(const std::vector<std::string>& specs);

}  // namespace xcall_torture
