// cache_line.hpp — the cache-line size the library pads to. Private.
//
// 64 bytes: the line of every x86-64 and arm64 core we target, the unit of
// coherence that a store invalidates. Not 128 (folly's choice on x86, where
// Intel's adjacent-line prefetcher pulls lines in pairs): the padding is
// paid per CPU and, for padded_csd, per target of every caller storage
// (nr_cpus descriptors per host depth and per outside slot, O(N^2) bytes in
// a domain of N CPUs).
// Not std::hardware_destructive_interference_size either: GCC warns that it
// may change between compiler versions, and this value is part of the
// layout the static_asserts beside each padded struct check.
//
// Ordering: none.
#pragma once

#include <cstddef>

namespace xcall::detail {

inline constexpr std::size_t kCacheLine = 64;

}  // namespace xcall::detail
