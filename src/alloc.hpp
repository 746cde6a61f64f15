// alloc.hpp — how the library allocates on its call paths: without throwing,
// so a call can report not_enough_memory and leave nothing half-claimed (an
// outside slot still busy, a nesting depth still counted). In fault-injection
// builds the fail_alloc fault makes every n-th allocation fail. Private.
//
// Ordering: none; plain values.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

#include "fault_injection.hpp"

namespace xcall::detail {

/// A new T, or nullptr when memory (or the fail_alloc fault) says no.
template <class T, class... Args>
std::unique_ptr<T> try_make(Args&&... args) noexcept {
  if (fault::fail_this_alloc()) return nullptr;
  try {
    return std::make_unique<T>(std::forward<Args>(args)...);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

/// n value-initialised Ts, or nullptr.
template <class T>
std::unique_ptr<T[]> try_make_array(std::size_t n) noexcept {
  if (fault::fail_this_alloc()) return nullptr;
  try {
    return std::make_unique<T[]>(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

}  // namespace xcall::detail
