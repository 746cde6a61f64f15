// alloc_counter.hpp — counts every operator new in the process.
//
// xcall-bench replaces the global operator new and delete (alloc_counter.cpp)
// with versions that count and forward to malloc/free, so footprint.cpp can
// tell how many allocations a call makes once warm (the design promises
// none). The count covers every thread, the domain's own included.
#pragma once

#include <cstdint>

namespace xcall::bench {

/// Allocations (operator new of any form) since the process started.
std::uint64_t allocations() noexcept;

}  // namespace xcall::bench
