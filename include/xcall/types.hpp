// xcall/types.hpp — the vocabulary types every other xcall header uses.
//
// Mirrors the kernel's: a CPU number (`cpu_t`, like `int cpu`), the function a
// cross-call runs (`smp_call_func_t`) and the per-CPU predicate of the
// conditional calls (`smp_cond_func_t`).
#pragma once

namespace xcall {

/// A CPU number inside one domain: 0 .. nr_cpu_ids()-1.
using cpu_t = unsigned;

/// "No CPU": what this_cpu() returns on a thread that hosts none.
inline constexpr cpu_t no_cpu = static_cast<cpu_t>(-1);

/// The largest nr_cpus a domain accepts (the kernel's NR_CPUS of a big config).
inline constexpr cpu_t kMaxCpus = 4096;

/// The function a cross-call runs on each target. It must not throw (use the
/// callable forms of domain's calls for code that may).
using call_func_t = void (*)(void* info);

/// Predicate of on_each_cpu_cond_mask(): evaluated by the caller, once per
/// online CPU of the mask, the caller's own first, before anything is queued.
/// It may throw: the exception leaves the call with nothing queued or run.
using cond_func_t = bool (*)(cpu_t cpu, void* info);

}  // namespace xcall
