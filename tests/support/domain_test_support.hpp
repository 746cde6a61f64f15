// tests/support/domain_test_support.hpp — what the xcall::domain suites share
// (tests/unit/call_form_test.cpp, domain_error_test.cpp, domain_test.cpp,
// hotplug_test.cpp, callable_test.cpp, destruction_test.cpp): the error codes
// of domain.hpp's contract, to compare results with, and the number of CPUs
// of their usual domain.
#pragma once

#include <system_error>

#include "xcall/types.hpp"

namespace xcall_test {

inline const std::error_code kOk{};
inline const std::error_code kNxio = std::make_error_code(std::errc::no_such_device_or_address);
inline const std::error_code kInval = std::make_error_code(std::errc::invalid_argument);
inline const std::error_code kBusy = std::make_error_code(std::errc::device_or_resource_busy);
inline const std::error_code kDeadlk =
    std::make_error_code(std::errc::resource_deadlock_would_occur);
inline const std::error_code kNotsup = std::make_error_code(std::errc::operation_not_supported);

/// CPUs in the domains of most domain tests.
inline constexpr xcall::cpu_t kN = 4;

}  // namespace xcall_test
