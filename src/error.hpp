// error.hpp — the library's one way to spell an error code. Private.
//
// Ordering: none.
#pragma once

#include <system_error>

namespace xcall::detail {

/// std::errc as the std::error_code the public API returns.
[[nodiscard]] inline std::error_code err(std::errc e) noexcept { return std::make_error_code(e); }

}  // namespace xcall::detail
