// xcall/xcall.hpp — the whole public API: cross-CPU function calls for user
// space, with the Linux kernel's smp_call_function semantics.
#pragma once

#include "xcall/cpu.hpp"
#include "xcall/cpumask.hpp"
#include "xcall/csd.hpp"
#include "xcall/domain.hpp"
#include "xcall/options.hpp"
#include "xcall/stall.hpp"
#include "xcall/stats.hpp"
#include "xcall/types.hpp"
