// tests/support/call_forms.hpp — every form in which a domain can be asked to
// run a function (the function-pointer forms with and without wait, the async
// single call, the callable forms), their names, and one dispatcher that makes
// a call of a given form. Shared by the tests that sweep or pick call forms
// (call_form_test; stress: ordering_test, hotplug_test, alloc_fault_test).
#pragma once

#include <cstddef>
#include <iterator>
#include <ostream>
#include <system_error>

#include "xcall/xcall.hpp"

namespace xcall_test {

enum class form {
  single_wait,
  single_nowait,
  single_async,
  many_wait,
  many_nowait,
  function_wait,
  function_nowait,
  any_wait,
  any_nowait,
  each_wait,
  each_nowait,
  each_mask_wait,
  each_mask_nowait,
  cond_wait,
  cond_nowait,
  fn_single,
  fn_many,
  fn_each,
  fn_each_mask,
};

/// Every form, in declaration order.
inline constexpr form kAllForms[] = {
    form::single_wait,      form::single_nowait, form::single_async,    form::many_wait,
    form::many_nowait,      form::function_wait, form::function_nowait, form::any_wait,
    form::any_nowait,       form::each_wait,     form::each_nowait,     form::each_mask_wait,
    form::each_mask_nowait, form::cond_wait,     form::cond_nowait,     form::fn_single,
    form::fn_many,          form::fn_each,       form::fn_each_mask,
};
inline constexpr std::size_t kFormCount = std::size(kAllForms);

inline const char* name_of(form f) {
  switch (f) {
    case form::single_wait:
      return "single_wait";
    case form::single_nowait:
      return "single_nowait";
    case form::single_async:
      return "single_async";
    case form::many_wait:
      return "many_wait";
    case form::many_nowait:
      return "many_nowait";
    case form::function_wait:
      return "function_wait";
    case form::function_nowait:
      return "function_nowait";
    case form::any_wait:
      return "any_wait";
    case form::any_nowait:
      return "any_nowait";
    case form::each_wait:
      return "each_wait";
    case form::each_nowait:
      return "each_nowait";
    case form::each_mask_wait:
      return "each_mask_wait";
    case form::each_mask_nowait:
      return "each_mask_nowait";
    case form::cond_wait:
      return "cond_wait";
    case form::cond_nowait:
      return "cond_nowait";
    case form::fn_single:
      return "fn_single";
    case form::fn_many:
      return "fn_many";
    case form::fn_each:
      return "fn_each";
    case form::fn_each_mask:
      return "fn_each_mask";
  }
  return "?";
}

inline std::ostream& operator<<(std::ostream& os, form f) { return os << name_of(f); }

/// gtest prints a form by its name.
inline void PrintTo(form f, std::ostream* os) { *os << name_of(f); }

/// Whether a call of form f returns only after every function it runs is done.
/// (The callable forms always wait.)
inline bool waits(form f) {
  switch (f) {
    case form::single_nowait:
    case form::single_async:
    case form::many_nowait:
    case form::function_nowait:
    case form::any_nowait:
    case form::each_nowait:
    case form::each_mask_nowait:
    case form::cond_nowait:
      return false;
    default:
      return true;
  }
}

/// What a call of any form is made with. `target` is used by the single forms,
/// `mask` by the many/any/each_mask/cond forms, `cond` by the cond forms and
/// `csd` by single_async (its func/info are set to `func`/`info` first; the
/// caller makes sure it is not in flight). The function-pointer forms run
/// func(info); the callable forms run a lambda that calls func(info).
struct call_args {
  xcall::cpu_t target;
  const xcall::cpumask& mask;
  xcall::call_func_t func;
  void* info;
  xcall::cond_func_t cond = nullptr;
  xcall::call_single_data* csd = nullptr;
};

/// Makes one call of form `f` on `d` from the calling context and returns
/// what the call returned (EINVAL if `f` needs a cond or csd it was not given).
inline std::error_code call_in_form(xcall::domain& d, form f, const call_args& a) {
  const std::error_code inval = std::make_error_code(std::errc::invalid_argument);
  const xcall::call_func_t func = a.func;
  void* const info = a.info;
  auto lambda = [func, info] { func(info); };
  switch (f) {
    case form::single_wait:
      return d.call_function_single(a.target, func, info, true);
    case form::single_nowait:
      return d.call_function_single(a.target, func, info, false);
    case form::single_async:
      if (a.csd == nullptr) return inval;
      a.csd->func = func;
      a.csd->info = info;
      return d.call_function_single_async(a.target, *a.csd);
    case form::many_wait:
      return d.call_function_many(a.mask, func, info, true);
    case form::many_nowait:
      return d.call_function_many(a.mask, func, info, false);
    case form::function_wait:
      return d.call_function(func, info, true);
    case form::function_nowait:
      return d.call_function(func, info, false);
    case form::any_wait:
      return d.call_function_any(a.mask, func, info, true);
    case form::any_nowait:
      return d.call_function_any(a.mask, func, info, false);
    case form::each_wait:
      return d.on_each_cpu(func, info, true);
    case form::each_nowait:
      return d.on_each_cpu(func, info, false);
    case form::each_mask_wait:
      return d.on_each_cpu_mask(a.mask, func, info, true);
    case form::each_mask_nowait:
      return d.on_each_cpu_mask(a.mask, func, info, false);
    case form::cond_wait:
      if (a.cond == nullptr) return inval;
      return d.on_each_cpu_cond_mask(a.cond, func, info, true, a.mask);
    case form::cond_nowait:
      if (a.cond == nullptr) return inval;
      return d.on_each_cpu_cond_mask(a.cond, func, info, false, a.mask);
    case form::fn_single:
      return d.call_function_single(a.target, lambda);
    case form::fn_many:
      return d.call_function_many(a.mask, lambda);
    case form::fn_each:
      return d.on_each_cpu(lambda);
    case form::fn_each_mask:
      return d.on_each_cpu_mask(a.mask, lambda);
  }
  return inval;
}

}  // namespace xcall_test
