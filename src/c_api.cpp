// c_api.cpp — the C API (xcall/xcall.h): one thin shim per function over
// the public C++ API, which stays the one implementation.
//
// Every entry point catches every exception (glibc's forced unwind of
// thread cancellation excepted: it is rethrown, as it must be) and turns it
// into a negative errno with a message in the thread's last-error buffer.
// The success path adds a null check or two and nothing else: messages are
// written only on failure, out of line, without allocating or taking locks
// (a function run from a doorbell signal may fail a call too).
//
// Handles: xcall_domain_t* and xcall_cpumask_t* are the C++ objects' own
// addresses (reinterpret_cast there and back, never dereferenced as the C
// type); xcall_attachment_t* is a heap cpu_attachment. The caller-storage
// types (csd, irq flags, blocking region, loop wait) hold the C++ object at
// the start of their opaque bytes, constructed there by placement new.
//
// Ordering: none of its own; each shim inherits the C++ call's edges.
#include "xcall/xcall.h"

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#if defined(__GLIBCXX__)
#include <cxxabi.h>
#endif

#include "xcall/xcall.hpp"

namespace {

using xcall::cpu_t;
using xcall::cpumask;
using xcall::domain;

// The C function types are the C++ ones: no cast, no trampoline.
static_assert(std::is_same_v<xcall_func_t, xcall::call_func_t>);
static_assert(std::is_same_v<xcall_cond_func_t, xcall::cond_func_t>);
static_assert(XCALL_NO_CPU == xcall::no_cpu);
static_assert(XCALL_MAX_CPUS == xcall::kMaxCpus);

// The caller owns the descriptor's storage: the C++ descriptor must fit in
// it, at its start, and need no stronger alignment than the C struct has.
static_assert(sizeof(xcall::call_single_data) <= sizeof(xcall_csd_t),
              "xcall_csd_t's bytes must hold xcall::call_single_data");
static_assert(alignof(xcall::call_single_data) <= alignof(xcall_csd_t),
              "xcall_csd_t must be aligned for xcall::call_single_data");

// The values of the C enums are the C++ enumerators' (the shims cast).
static_assert(XCALL_IDLE_POLL == static_cast<int>(xcall::idle_mode::poll));
static_assert(XCALL_IDLE_ADAPTIVE == static_cast<int>(xcall::idle_mode::adaptive));
static_assert(XCALL_IDLE_SLEEP == static_cast<int>(xcall::idle_mode::sleep));
static_assert(XCALL_ENGINE_PERCPU == static_cast<int>(xcall::engine::percpu));
static_assert(XCALL_ENGINE_CLASSIC == static_cast<int>(xcall::engine::classic));
static_assert(XCALL_DELIVERY_POLL == static_cast<int>(xcall::delivery_mode::poll));
static_assert(XCALL_DELIVERY_SIGNAL == static_cast<int>(xcall::delivery_mode::signal));
static_assert(XCALL_DELIVERY_FD == static_cast<int>(xcall::delivery_mode::fd));
static_assert(XCALL_HOST_LOOP_BLOCKED == static_cast<int>(xcall::host_activity::loop_blocked));

// ---- the last error --------------------------------------------------------

// Constant-initialised and trivially destructible: no guard, no destructor.
thread_local char tl_last_error[256];

/// Appends to the thread's last-error buffer, cutting at its end.
class message {
 public:
  explicit message(const char* fn) { add(fn).add(": "); }
  message& add(const char* s) noexcept {
    while (*s != '\0' && len_ + 1 < sizeof(tl_last_error)) tl_last_error[len_++] = *s++;
    tl_last_error[len_] = '\0';
    return *this;
  }
  message& add(unsigned long long v) noexcept {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    char out[24];
    for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    out[n] = '\0';
    return add(out);
  }
  message& add(unsigned v) noexcept { return add(static_cast<unsigned long long>(v)); }
  message& add(std::size_t v) noexcept { return add(static_cast<unsigned long long>(v)); }
  message& add(long long v) noexcept {
    if (v >= 0) return add(static_cast<unsigned long long>(v));
    add("-");
    return add(0ull - static_cast<unsigned long long>(v));
  }
  message& add(int v) noexcept { return add(static_cast<long long>(v)); }

 private:
  std::size_t len_ = 0;
};

const char* errno_name(int e) noexcept {
  switch (e) {
    case EINVAL:
      return "EINVAL";
    case ENXIO:
      return "ENXIO";
    case EBUSY:
      return "EBUSY";
    case EDEADLK:
      return "EDEADLK";
    case EOPNOTSUPP:
      return "EOPNOTSUPP";
    case ENOMEM:
      return "ENOMEM";
    case EAGAIN:
      return "EAGAIN";
    case ERANGE:
      return "ERANGE";
    case E2BIG:
      return "E2BIG";
    case EIO:
      return "EIO";
    case EPERM:
      return "EPERM";
    case EMFILE:
      return "EMFILE";
    case ENFILE:
      return "ENFILE";
    case ENOSYS:
      return "ENOSYS";
    default:
      return nullptr;
  }
}

/// Ends a message with the errno's name and returns -e.
int finish(message& m, int e) noexcept {
  m.add(" (");
  if (const char* name = errno_name(e)) {
    m.add(name);
  } else {
    m.add("errno ").add(e);
  }
  m.add(")");
  return -e;
}

/// "<fn>: <parts...> (<ENAME>)", returns -e.
template <class... Parts>
[[gnu::cold, gnu::noinline]] int fail(const char* fn, int e, const Parts&... parts) noexcept {
  message m(fn);
  (m.add(parts), ...);
  return finish(m, e);
}

int fail_null(const char* fn, const char* what) noexcept {
  return fail(fn, EINVAL, what, " is NULL");
}

/// The errno of an error_code the C++ API returned (all generic ones).
int errno_of(const std::error_code& ec) noexcept {
  const bool posix =
      ec.category() == std::generic_category() || ec.category() == std::system_category();
  return posix && ec.value() > 0 ? ec.value() : EIO;
}

/// The exception in flight, as an errno and a message. Rethrows a forced
/// unwind (pthread_cancel): swallowing it would abort the process.
[[gnu::cold, gnu::noinline]] int fail_exception(const char* fn) {
  int e = EIO;
  message m(fn);
  try {
    throw;
#if defined(__GLIBCXX__)
  } catch (abi::__forced_unwind&) {
    throw;
#endif
  } catch (const std::system_error& ex) {
    e = errno_of(ex.code());
    m.add(ex.what());
  } catch (const std::bad_alloc& ex) {
    e = ENOMEM;
    m.add("out of memory: ").add(ex.what());
  } catch (const std::invalid_argument& ex) {
    e = EINVAL;
    m.add(ex.what());
  } catch (const std::out_of_range& ex) {
    e = EINVAL;
    m.add(ex.what());
  } catch (const std::length_error& ex) {
    e = EINVAL;
    m.add(ex.what());
  } catch (const std::domain_error& ex) {
    e = EINVAL;
    m.add(ex.what());
  } catch (const std::overflow_error& ex) {
    e = ERANGE;
    m.add(ex.what());
  } catch (const std::range_error& ex) {
    e = ERANGE;
    m.add(ex.what());
  } catch (const std::exception& ex) {
    m.add("unexpected exception: ").add(ex.what());
  } catch (...) {
    m.add("unexpected exception of a type not derived from std::exception");
  }
  return finish(m, e);
}

/// Runs an entry point's body; every exception becomes an errno.
template <class Body>
auto guarded(const char* fn, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    return static_cast<decltype(body())>(fail_exception(fn));
  }
}

// ---- handles ---------------------------------------------------------------

domain* D(xcall_domain_t* d) noexcept { return reinterpret_cast<domain*>(d); }
const domain* D(const xcall_domain_t* d) noexcept { return reinterpret_cast<const domain*>(d); }
cpumask* M(xcall_cpumask_t* m) noexcept { return reinterpret_cast<cpumask*>(m); }
const cpumask* M(const xcall_cpumask_t* m) noexcept { return reinterpret_cast<const cpumask*>(m); }
xcall_cpumask_t* C(cpumask* m) noexcept { return reinterpret_cast<xcall_cpumask_t*>(m); }
xcall::cpu_attachment* A(xcall_attachment_t* a) noexcept {
  return reinterpret_cast<xcall::cpu_attachment*>(a);
}
const xcall::cpu_attachment* A(const xcall_attachment_t* a) noexcept {
  return reinterpret_cast<const xcall::cpu_attachment*>(a);
}
xcall::call_single_data* S(xcall_csd_t* c) noexcept {
  return std::launder(reinterpret_cast<xcall::call_single_data*>(c->opaque_.bytes));
}
const xcall::call_single_data* S(const xcall_csd_t* c) noexcept {
  return std::launder(reinterpret_cast<const xcall::call_single_data*>(c->opaque_.bytes));
}

// ---- versioned structs -----------------------------------------------------

/// Copies a caller's struct of `size` bytes into `out` (already holding the
/// defaults), the way the kernel's copy_struct_from_user does: fields the
/// caller does not know keep their defaults; a tail this library does not
/// know must be zero.
template <class T>
int copy_struct_in(const char* fn, const char* what, T& out, const T& in, std::size_t min_size) {
  const std::size_t size = in.size;
  if (size < min_size) {
    return fail(fn, EINVAL, what, "->size ", size, " is below the first version's ", min_size,
                "; fill the struct with its _init function");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(&in);
  for (std::size_t i = sizeof(T); i < size; ++i) {
    if (bytes[i] != 0) {
      return fail(fn, E2BIG, what, "->size ", size, ": byte ", i,
                  " is not zero and this library does not know it");
    }
  }
  std::memcpy(static_cast<void*>(&out), &in, size < sizeof(T) ? size : sizeof(T));
  out.size = sizeof(T);
  return 0;
}

void default_options(xcall_domain_options_t& o) noexcept {
  const xcall::domain_options d{};
  std::memset(static_cast<void*>(&o), 0, sizeof(o));
  o.size = sizeof(o);
  o.nr_cpus = d.nr_cpus;
  o.start_threads = d.start_threads;
  o.pin_threads = d.pin_threads;
  o.idle = static_cast<int>(d.idle);
  o.idle_spin_ns = d.idle_spin.count();
  o.engine = static_cast<int>(d.engine_kind);
  o.stall_timeout_ns = d.stall_timeout.count();
  o.on_stall = nullptr;
  o.on_stall_arg = nullptr;
  o.doorbell_signal = d.doorbell_signal;
  o.wake_tree = d.wake_tree;
}

/// domain_options::on_stall for a C callback; recoverable with target<>().
struct stall_shim {
  xcall_stall_func_t fn;
  void* arg;

  void operator()(const xcall::stall_report& r) const {
    std::string line;
    try {
      line = xcall::format_stall_report(r);
    } catch (...) {
      // The report goes out without its line rather than not at all.
    }
    xcall_stall_report_t c{};
    c.size = sizeof(c);
    c.unstuck = r.unstuck;
    c.report = r.report;
    c.waiter_cpu = r.waiter_cpu;
    c.waiter_tid = r.waiter_tid;
    c.target = r.target;
    c.waited_ns = r.waited.count();
    c.func = r.func;
    c.info = r.info;
    c.func_name = r.func_name.c_str();
    c.target_online = r.target_online;
    c.target_activity = static_cast<int>(r.target_activity);
    c.target_func = r.target_func;
    c.target_func_name = r.target_func_name.c_str();
    c.target_irqs_disabled = r.target_irqs_disabled;
    c.target_queue_length = r.target_queue_length;
    c.target_doorbell_signal = r.target_doorbell_signal;
    c.target_blocks_signal = r.target_blocks_signal;
    c.line = line.c_str();
    c.target_tid = r.target_tid;
    c.target_thread_state = r.target_thread_state;
    c.target_runnable_wait_ns = r.target_runnable_wait.count();
    c.target_sched_window_ns = r.target_sched_window.count();
    fn(&c, arg);
  }
};

xcall::domain_options to_cxx(const xcall_domain_options_t& c) {
  xcall::domain_options o;
  o.nr_cpus = c.nr_cpus;
  o.start_threads = c.start_threads;
  o.pin_threads = c.pin_threads;
  // Scoped enums with int underneath hold any int: the domain's own
  // validation names a bad value.
  o.idle = static_cast<xcall::idle_mode>(c.idle);
  o.idle_spin = std::chrono::nanoseconds(c.idle_spin_ns);
  o.engine_kind = static_cast<xcall::engine>(c.engine);
  o.stall_timeout = std::chrono::nanoseconds(c.stall_timeout_ns);
  if (c.on_stall != nullptr) o.on_stall = stall_shim{c.on_stall, c.on_stall_arg};
  o.doorbell_signal = c.doorbell_signal;
  o.wake_tree = c.wake_tree;
  return o;
}

// ---- errors of the calls ---------------------------------------------------

/// Names what a failed call got wrong, from its error code and arguments.
/// `cpu` is the target of a single call; for the others, kNoTarget.
constexpr std::uint64_t kNoTarget = ~std::uint64_t{0};

[[gnu::cold, gnu::noinline]] int call_failed(const char* fn, const domain& dom, std::error_code ec,
                                             std::uint64_t cpu, const cpumask* mask) noexcept {
  const int e = errno_of(ec);
  const cpu_t nr = dom.nr_cpu_ids();
  switch (e) {
    case EINVAL:
      if (mask != nullptr && mask->size() < nr) {
        return fail(fn, e, "the mask has ", mask->size(), " bits, fewer than nr_cpu_ids ", nr);
      }
      return fail(fn, e, "invalid argument");
    case ENXIO:
      if (cpu == kNoTarget) return fail(fn, e, "no CPU of the mask is online");
      if (cpu >= nr) {
        return fail(fn, e, "cpu ", static_cast<unsigned long long>(cpu),
                    " is out of range (nr_cpu_ids ", nr, ")");
      }
      return fail(fn, e, "cpu ", static_cast<unsigned long long>(cpu), " is offline");
    case EDEADLK:
      return fail(fn, e,
                  "a call that waits, made with irqs soft-disabled (xcall_local_irq_save, "
                  "or a function's local copy), would deadlock");
    case ENOMEM:
      return fail(fn, e, "could not allocate the caller storage; nothing was queued");
    case EBUSY:
      return fail(fn, e, "the descriptor is still in flight");
    default:
      return fail(fn, e, "failed");
  }
}

[[gnu::cold, gnu::noinline]] int hotplug_failed(const char* fn, const domain& dom,
                                                std::error_code ec, cpu_t cpu) noexcept {
  const int e = errno_of(ec);
  switch (e) {
    case ENXIO:
      return fail(fn, e, "cpu ", cpu, " is out of range (nr_cpu_ids ", dom.nr_cpu_ids(), ")");
    case EOPNOTSUPP:
      return fail(fn, e, "cpu ", cpu,
                  " is not an owned CPU (attached, or the domain does not start threads)");
    case EDEADLK:
      if (xcall::irqs_disabled()) {
        return fail(fn, e, "cpu ", cpu, ": hotplug with irqs soft-disabled would deadlock");
      }
      return fail(fn, e, "cpu ", cpu, " is the caller's own CPU, or one it holds beneath a proxy");
    default:
      return fail(fn, e, "cpu ", cpu, " failed");
  }
}

// ---- caller-storage regions: irq flags, blocking regions, loop waits -------

// Each C struct is uint64_t opaque_[N]: the C++ object at the start, then
// (last two words) a magic word tied to the struct's address and the owning
// thread's token. Detects a region ended twice, never begun, copied or ended
// on another thread; the per-kind depth detects an end out of order.
thread_local char tl_thread_token;
thread_local unsigned tl_depth[3];  // irq, blocking region, loop wait

std::uint64_t thread_token() noexcept { return reinterpret_cast<std::uintptr_t>(&tl_thread_token); }

template <class T, class CStruct, int Kind, std::uint64_t Magic>
struct region {
  static constexpr std::size_t kWords = sizeof(CStruct::opaque_) / sizeof(std::uint64_t);
  static constexpr std::size_t kDepth = kWords - 3;  // where the depth at begin is kept
  static constexpr std::size_t kMagicWord = kWords - 2;
  static constexpr std::size_t kOwnerWord = kWords - 1;
  static_assert(sizeof(T) <= kDepth * sizeof(std::uint64_t), "the C struct is too small");
  static_assert(alignof(T) <= alignof(std::uint64_t), "the C struct is under-aligned");

  static std::uint64_t magic(const CStruct* c) noexcept {
    return Magic ^ reinterpret_cast<std::uintptr_t>(c);
  }
  static T* object(CStruct* c) noexcept {
    return std::launder(reinterpret_cast<T*>(static_cast<void*>(c->opaque_)));
  }

  /// Constructs T in *c (T's constructor is noexcept) and records it.
  static T* begin(CStruct* c) noexcept {
    T* t = ::new (static_cast<void*>(c->opaque_)) T();
    c->opaque_[kDepth] = tl_depth[Kind]++;
    c->opaque_[kMagicWord] = magic(c);
    c->opaque_[kOwnerWord] = thread_token();
    return t;
  }

  /// Checks that *c is this thread's innermost open region; ends it.
  static int end(const char* fn, const char* what, CStruct* c) {
    if (c == nullptr) return fail_null(fn, what);
    if (c->opaque_[kMagicWord] != magic(c)) {
      return fail(fn, EINVAL, what,
                  " was not begun, was already ended, or is a copy of the one begun");
    }
    if (c->opaque_[kOwnerWord] != thread_token()) {
      return fail(fn, EINVAL, what, " was begun on another thread");
    }
    if (c->opaque_[kDepth] + 1 != tl_depth[Kind]) {
      return fail(fn, EINVAL, what, " is not the innermost one still open on this thread (depth ",
                  static_cast<unsigned long long>(c->opaque_[kDepth]), " of ", tl_depth[Kind], ")");
    }
    // Closed before the destructor runs: it may drain, and a function run
    // there may open and close regions of its own.
    c->opaque_[kMagicWord] = 0;
    --tl_depth[Kind];
    object(c)->~T();
    return 0;
  }
};

using irq_region = region<xcall::irq_guard, xcall_irq_flags_t, 0, 0x7863616c6c697271ull>;
using blocking = region<xcall::blocking_region, xcall_blocking_region_t, 1, 0x7863616c6c626c6bull>;
using loop = region<xcall::loop_wait, xcall_loop_wait_t, 2, 0x7863616c6c6c6f6full>;

int check_index(const char* fn, int n) noexcept {
  return n < -1 ? fail(fn, EINVAL, "n ", n, " is below -1") : 0;
}

cpu_t from_index(int n) noexcept { return n == -1 ? xcall::no_cpu : static_cast<cpu_t>(n); }

}  // namespace

extern "C" {

const char* xcall_last_error(void) { return tl_last_error; }

// ---- domains ---------------------------------------------------------------

int xcall_domain_options_init(xcall_domain_options_t* opts) {
  const char* const fn = __func__;
  if (opts == nullptr) return fail_null(fn, "opts");
  default_options(*opts);
  return 0;
}

int xcall_domain_create(const xcall_domain_options_t* opts, xcall_domain_t** out) {
  const char* const fn = __func__;
  if (out == nullptr) return fail_null(fn, "out");
  return guarded(fn, [&] {
    xcall_domain_options_t c;
    default_options(c);
    if (opts != nullptr) {
      if (const int e = copy_struct_in(fn, "opts", c, *opts, XCALL_DOMAIN_OPTIONS_SIZE_V1)) {
        return e;
      }
    }
    *out = reinterpret_cast<xcall_domain_t*>(new domain(to_cxx(c)));
    return 0;
  });
}

void xcall_domain_destroy(xcall_domain_t* dom) { delete D(dom); }

int xcall_domain_get_options(const xcall_domain_t* dom, xcall_domain_options_t* out) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (out == nullptr) return fail_null(fn, "out");
  if (out->size < XCALL_DOMAIN_OPTIONS_SIZE_V1) {
    return fail(fn, EINVAL, "out->size ", out->size, " is below the first version's ",
                XCALL_DOMAIN_OPTIONS_SIZE_V1);
  }
  const xcall::domain_options& o = D(dom)->options();
  xcall_domain_options_t c;
  default_options(c);
  c.nr_cpus = o.nr_cpus;
  c.start_threads = o.start_threads;
  c.pin_threads = o.pin_threads;
  c.idle = static_cast<int>(o.idle);
  c.idle_spin_ns = o.idle_spin.count();
  c.engine = static_cast<int>(o.engine_kind);
  c.stall_timeout_ns = o.stall_timeout.count();
  if (const stall_shim* shim = o.on_stall.target<stall_shim>()) {
    c.on_stall = shim->fn;
    c.on_stall_arg = shim->arg;
  }
  c.doorbell_signal = o.doorbell_signal;
  c.wake_tree = o.wake_tree;
  const std::size_t n = out->size < sizeof(c) ? out->size : sizeof(c);
  c.size = n;
  std::memcpy(static_cast<void*>(out), &c, n);
  return 0;
}

unsigned int xcall_nr_cpu_ids(const xcall_domain_t* dom) {
  const char* const fn = __func__;
  if (dom == nullptr) {
    fail_null(fn, "dom");
    return 0;  // no domain has 0 CPUs
  }
  return D(dom)->nr_cpu_ids();
}

const xcall_cpumask_t* xcall_online_mask(const xcall_domain_t* dom) {
  const char* const fn = __func__;
  if (dom == nullptr) {
    fail_null(fn, "dom");
    return nullptr;
  }
  return reinterpret_cast<const xcall_cpumask_t*>(&D(dom)->online_mask());
}

int xcall_cpu_online(const xcall_domain_t* dom, unsigned int cpu) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (cpu >= D(dom)->nr_cpu_ids()) {
    return fail(fn, ENXIO, "cpu ", cpu, " is out of range (nr_cpu_ids ", D(dom)->nr_cpu_ids(), ")");
  }
  return D(dom)->cpu_online(cpu) ? 1 : 0;
}

int xcall_cpu_down(xcall_domain_t* dom, unsigned int cpu) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->cpu_down(cpu);
    return ec ? hotplug_failed(fn, *D(dom), ec, cpu) : 0;
  });
}

int xcall_cpu_up(xcall_domain_t* dom, unsigned int cpu) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->cpu_up(cpu);
    return ec ? hotplug_failed(fn, *D(dom), ec, cpu) : 0;
  });
}

// ---- calls -------------------------------------------------------------------

int xcall_call_function_single(xcall_domain_t* dom, unsigned int cpu, xcall_func_t func, void* info,
                               bool wait) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->call_function_single(cpu, func, info, wait);
    return ec ? call_failed(fn, *D(dom), ec, cpu, nullptr) : 0;
  });
}

int xcall_call_function_single_async(xcall_domain_t* dom, unsigned int cpu, xcall_csd_t* csd) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (csd == nullptr) return fail_null(fn, "csd");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->call_function_single_async(cpu, *S(csd));
    if (ec && errno_of(ec) == EINVAL) return fail(fn, EINVAL, "the descriptor's func is NULL");
    return ec ? call_failed(fn, *D(dom), ec, cpu, nullptr) : 0;
  });
}

int xcall_call_function_many(xcall_domain_t* dom, const xcall_cpumask_t* mask, xcall_func_t func,
                             void* info, bool wait) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (mask == nullptr) return fail_null(fn, "mask");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->call_function_many(*M(mask), func, info, wait);
    return ec ? call_failed(fn, *D(dom), ec, kNoTarget, M(mask)) : 0;
  });
}

int xcall_call_function(xcall_domain_t* dom, xcall_func_t func, void* info, bool wait) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->call_function(func, info, wait);
    return ec ? call_failed(fn, *D(dom), ec, kNoTarget, nullptr) : 0;
  });
}

int xcall_call_function_any(xcall_domain_t* dom, const xcall_cpumask_t* mask, xcall_func_t func,
                            void* info, bool wait) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (mask == nullptr) return fail_null(fn, "mask");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->call_function_any(*M(mask), func, info, wait);
    return ec ? call_failed(fn, *D(dom), ec, kNoTarget, M(mask)) : 0;
  });
}

int xcall_on_each_cpu(xcall_domain_t* dom, xcall_func_t func, void* info, bool wait) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->on_each_cpu(func, info, wait);
    return ec ? call_failed(fn, *D(dom), ec, kNoTarget, nullptr) : 0;
  });
}

int xcall_on_each_cpu_mask(xcall_domain_t* dom, const xcall_cpumask_t* mask, xcall_func_t func,
                           void* info, bool wait) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (mask == nullptr) return fail_null(fn, "mask");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->on_each_cpu_mask(*M(mask), func, info, wait);
    return ec ? call_failed(fn, *D(dom), ec, kNoTarget, M(mask)) : 0;
  });
}

int xcall_on_each_cpu_cond_mask(xcall_domain_t* dom, xcall_cond_func_t cond, xcall_func_t func,
                                void* info, bool wait, const xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (mask == nullptr) return fail_null(fn, "mask");
  if (func == nullptr) return fail_null(fn, "func");
  return guarded(fn, [&] {
    const std::error_code ec = D(dom)->on_each_cpu_cond_mask(cond, func, info, wait, *M(mask));
    return ec ? call_failed(fn, *D(dom), ec, kNoTarget, M(mask)) : 0;
  });
}

// ---- the caller-owned descriptor ---------------------------------------------

int xcall_csd_init(xcall_csd_t* csd, xcall_func_t func, void* info) {
  const char* const fn = __func__;
  if (csd == nullptr) return fail_null(fn, "csd");
  std::memset(csd->opaque_.bytes, 0, sizeof(csd->opaque_.bytes));
  ::new (static_cast<void*>(csd->opaque_.bytes)) xcall::call_single_data(func, info);
  return 0;
}

int xcall_csd_set(xcall_csd_t* csd, xcall_func_t func, void* info) {
  const char* const fn = __func__;
  if (csd == nullptr) return fail_null(fn, "csd");
  xcall::call_single_data* c = S(csd);
  if (c->in_flight()) return fail(fn, EBUSY, "the descriptor is in flight");
  c->func = func;
  c->info = info;
  return 0;
}

int xcall_csd_in_flight(const xcall_csd_t* csd) {
  const char* const fn = __func__;
  if (csd == nullptr) return fail_null(fn, "csd");
  return S(csd)->in_flight() ? 1 : 0;
}

// ---- cpumasks ------------------------------------------------------------------

int xcall_cpumask_create(unsigned int nbits, xcall_cpumask_t** out) {
  const char* const fn = __func__;
  if (out == nullptr) return fail_null(fn, "out");
  if (nbits > static_cast<unsigned>(INT_MAX)) {
    return fail(fn, EINVAL, "nbits ", nbits, " is above INT_MAX");
  }
  return guarded(fn, [&] {
    *out = C(new cpumask(nbits));
    return 0;
  });
}

int xcall_cpumask_dup(const xcall_cpumask_t* src, xcall_cpumask_t** out) {
  const char* const fn = __func__;
  if (src == nullptr) return fail_null(fn, "src");
  if (out == nullptr) return fail_null(fn, "out");
  return guarded(fn, [&] {
    *out = C(new cpumask(*M(src)));
    return 0;
  });
}

void xcall_cpumask_destroy(xcall_cpumask_t* mask) { delete M(mask); }

int xcall_cpumask_size(const xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return static_cast<int>(M(mask)->size());
}

int xcall_cpumask_set_cpu(xcall_cpumask_t* mask, unsigned int cpu) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return guarded(fn, [&] {
    M(mask)->set(cpu);
    return 0;
  });
}

int xcall_cpumask_clear_cpu(xcall_cpumask_t* mask, unsigned int cpu) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return guarded(fn, [&] {
    M(mask)->reset(cpu);
    return 0;
  });
}

int xcall_cpumask_test_cpu(const xcall_cpumask_t* mask, unsigned int cpu) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return guarded(fn, [&] { return M(mask)->test(cpu) ? 1 : 0; });
}

int xcall_cpumask_test_and_set_cpu(xcall_cpumask_t* mask, unsigned int cpu) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return guarded(fn, [&] { return M(mask)->test_and_set(cpu) ? 1 : 0; });
}

int xcall_cpumask_test_and_clear_cpu(xcall_cpumask_t* mask, unsigned int cpu) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return guarded(fn, [&] { return M(mask)->test_and_reset(cpu) ? 1 : 0; });
}

int xcall_cpumask_setall(xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  M(mask)->set_all();
  return 0;
}

int xcall_cpumask_clear(xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  M(mask)->reset_all();
  return 0;
}

int xcall_cpumask_weight(const xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return static_cast<int>(M(mask)->count());
}

int xcall_cpumask_empty(const xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return M(mask)->none() ? 1 : 0;
}

int xcall_cpumask_first(const xcall_cpumask_t* mask) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  return static_cast<int>(M(mask)->first());
}

int xcall_cpumask_next(const xcall_cpumask_t* mask, int n) {
  const char* const fn = __func__;
  if (mask == nullptr) return fail_null(fn, "mask");
  if (const int e = check_index(fn, n)) return e;
  return static_cast<int>(M(mask)->next(from_index(n)));
}

int xcall_cpumask_first_and(const xcall_cpumask_t* a, const xcall_cpumask_t* b) {
  const char* const fn = __func__;
  if (a == nullptr) return fail_null(fn, "a");
  if (b == nullptr) return fail_null(fn, "b");
  return static_cast<int>(xcall::first_and(*M(a), *M(b)));
}

int xcall_cpumask_next_and(int n, const xcall_cpumask_t* a, const xcall_cpumask_t* b) {
  const char* const fn = __func__;
  if (a == nullptr) return fail_null(fn, "a");
  if (b == nullptr) return fail_null(fn, "b");
  if (const int e = check_index(fn, n)) return e;
  return static_cast<int>(xcall::next_and(from_index(n), *M(a), *M(b)));
}

int xcall_cpumask_and(xcall_cpumask_t* dst, const xcall_cpumask_t* a, const xcall_cpumask_t* b) {
  const char* const fn = __func__;
  if (dst == nullptr) return fail_null(fn, "dst");
  if (a == nullptr) return fail_null(fn, "a");
  if (b == nullptr) return fail_null(fn, "b");
  M(dst)->assign_and(*M(a), *M(b));
  return 0;
}

int xcall_cpumask_and_with(xcall_cpumask_t* dst, const xcall_cpumask_t* src) {
  const char* const fn = __func__;
  if (dst == nullptr) return fail_null(fn, "dst");
  if (src == nullptr) return fail_null(fn, "src");
  *M(dst) &= *M(src);
  return 0;
}

int xcall_cpumask_or_with(xcall_cpumask_t* dst, const xcall_cpumask_t* src) {
  const char* const fn = __func__;
  if (dst == nullptr) return fail_null(fn, "dst");
  if (src == nullptr) return fail_null(fn, "src");
  *M(dst) |= *M(src);
  return 0;
}

int xcall_cpumask_copy(xcall_cpumask_t* dst, const xcall_cpumask_t* src) {
  const char* const fn = __func__;
  if (dst == nullptr) return fail_null(fn, "dst");
  if (src == nullptr) return fail_null(fn, "src");
  return guarded(fn, [&] {
    *M(dst) = *M(src);
    return 0;
  });
}

// ---- attached CPUs -----------------------------------------------------------

int xcall_attach_options_init(xcall_attach_options_t* how) {
  const char* const fn = __func__;
  if (how == nullptr) return fail_null(fn, "how");
  const xcall::attach_options d{};
  std::memset(static_cast<void*>(how), 0, sizeof(*how));
  how->size = sizeof(*how);
  how->delivery = static_cast<int>(d.delivery);
  how->proxy = d.proxy;
  return 0;
}

int xcall_attach(xcall_domain_t* dom, unsigned int cpu, const xcall_attach_options_t* how,
                 xcall_attachment_t** out) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (out == nullptr) return fail_null(fn, "out");
  xcall_attach_options_t c;
  xcall_attach_options_init(&c);
  if (how != nullptr) {
    if (const int e = copy_struct_in(fn, "how", c, *how, XCALL_ATTACH_OPTIONS_SIZE_V1)) {
      return e;
    }
  }
  return guarded(fn, [&] {
    // The handle first: once the CPU is attached nothing may fail.
    auto handle = std::make_unique<xcall::cpu_attachment>();
    *handle = D(dom)->attach(
        cpu, xcall::attach_options{.delivery = static_cast<xcall::delivery_mode>(c.delivery),
                                   .proxy = c.proxy});
    *out = reinterpret_cast<xcall_attachment_t*>(handle.release());
    return 0;
  });
}

int xcall_detach(xcall_attachment_t* att) {
  const char* const fn = __func__;
  if (att == nullptr) return fail_null(fn, "att");
  // cpu_attachment::detach aborts on misuse and throws nothing else.
  std::unique_ptr<xcall::cpu_attachment> handle(A(att));
  handle->detach();
  return 0;
}

unsigned int xcall_attachment_cpu(const xcall_attachment_t* att) {
  return att == nullptr ? XCALL_NO_CPU : A(att)->cpu();
}

int xcall_attachment_doorbell_fd(const xcall_attachment_t* att) {
  return att == nullptr ? -1 : A(att)->doorbell_fd();
}

// ---- this thread's CPU context -------------------------------------------------

unsigned int xcall_this_cpu(void) { return xcall::this_cpu(); }

void xcall_poll(void) { xcall::poll(); }

int xcall_idle_wait(uint64_t timeout_ns) {
  const char* const fn = __func__;
  // Above INT64_MAX saturates to nanoseconds::max(): "until a call arrives".
  const auto timeout = timeout_ns > static_cast<std::uint64_t>(INT64_MAX)
                           ? std::chrono::nanoseconds::max()
                           : std::chrono::nanoseconds(static_cast<std::int64_t>(timeout_ns));
  return guarded(fn, [&] { return xcall::idle_wait(timeout) ? 1 : 0; });
}

int xcall_local_irq_save(xcall_irq_flags_t* flags) {
  const char* const fn = __func__;
  if (flags == nullptr) return fail_null(fn, "flags");
  irq_region::begin(flags);
  return 0;
}

int xcall_local_irq_restore(xcall_irq_flags_t* flags) {
  const char* const fn = __func__;
  return guarded(fn, [&] { return irq_region::end(fn, "flags", flags); });
}

bool xcall_irqs_disabled(void) { return xcall::irqs_disabled(); }

int xcall_blocking_region_enter(xcall_blocking_region_t* region) {
  const char* const fn = __func__;
  if (region == nullptr) return fail_null(fn, "region");
  blocking::begin(region);
  return 0;
}

int xcall_blocking_region_leave(xcall_blocking_region_t* region) {
  const char* const fn = __func__;
  return guarded(fn, [&] { return blocking::end(fn, "region", region); });
}

int xcall_loop_wait_begin(xcall_loop_wait_t* wait) {
  const char* const fn = __func__;
  if (wait == nullptr) return fail_null(fn, "wait");
  return loop::begin(wait)->may_block() ? 1 : 0;
}

int xcall_loop_wait_end(xcall_loop_wait_t* wait) {
  const char* const fn = __func__;
  return guarded(fn, [&] { return loop::end(fn, "wait", wait); });
}

// ---- statistics ------------------------------------------------------------------

int xcall_domain_stats(const xcall_domain_t* dom, xcall_cpu_stats_t* out, size_t count,
                       size_t elem_size) {
  const char* const fn = __func__;
  if (dom == nullptr) return fail_null(fn, "dom");
  if (out == nullptr && count > 0) return fail_null(fn, "out");
  if (elem_size < XCALL_CPU_STATS_SIZE_V1) {
    return fail(fn, EINVAL, "elem_size ", elem_size, " is below the first version's ",
                XCALL_CPU_STATS_SIZE_V1, "; pass sizeof(xcall_cpu_stats_t)");
  }
  return guarded(fn, [&] {
    const std::vector<xcall::cpu_stats> stats = D(dom)->stats();
    const std::size_t n = count < stats.size() ? count : stats.size();
    const std::size_t fill =
        elem_size < sizeof(xcall_cpu_stats_t) ? elem_size : sizeof(xcall_cpu_stats_t);
    for (std::size_t i = 0; i < n; ++i) {
      const xcall::cpu_stats& s = stats[i];
      xcall_cpu_stats_t c{};
      c.size = fill;
      c.cpu = s.cpu;
      c.online = s.online;
      c.calls_run = s.calls_run;
      c.doorbells_rung = s.doorbells_rung;
      c.doorbells_saved = s.doorbells_saved;
      c.sleeps = s.sleeps;
      c.drained_on_down = s.drained_on_down;
      c.stalls_reported = s.stalls_reported;
      c.signals_sent = s.signals_sent;
      c.signals_resent = s.signals_resent;
      c.signal_runs = s.signal_runs;
      c.signals_deferred = s.signals_deferred;
      c.proxy_runs = s.proxy_runs;
      c.doorbell_fd_writes = s.doorbell_fd_writes;
      c.wakes_relayed = s.wakes_relayed;
      std::memcpy(reinterpret_cast<unsigned char*>(out) + i * elem_size, &c, fill);
    }
    return static_cast<int>(stats.size());
  });
}

ssize_t xcall_format_stats(const xcall_cpu_stats_t* stats, size_t count, size_t elem_size,
                           unsigned int columns, char* buf, size_t len) {
  const char* const fn = __func__;
  if (stats == nullptr && count > 0) return fail_null(fn, "stats");
  if (buf == nullptr && len > 0) return fail_null(fn, "buf");
  if (elem_size < XCALL_CPU_STATS_SIZE_V1) {
    return fail(fn, EINVAL, "elem_size ", elem_size, " is below the first version's ",
                XCALL_CPU_STATS_SIZE_V1, "; pass sizeof(xcall_cpu_stats_t)");
  }
  return guarded(fn, [&]() -> ssize_t {
    std::vector<xcall::cpu_stats> cxx(count);
    const std::size_t take =
        elem_size < sizeof(xcall_cpu_stats_t) ? elem_size : sizeof(xcall_cpu_stats_t);
    for (std::size_t i = 0; i < count; ++i) {
      xcall_cpu_stats_t c{};
      std::memcpy(static_cast<void*>(&c),
                  reinterpret_cast<const unsigned char*>(stats) + i * elem_size, take);
      xcall::cpu_stats& s = cxx[i];
      s.cpu = c.cpu;
      s.online = c.online;
      s.calls_run = c.calls_run;
      s.doorbells_rung = c.doorbells_rung;
      s.doorbells_saved = c.doorbells_saved;
      s.sleeps = c.sleeps;
      s.drained_on_down = c.drained_on_down;
      s.stalls_reported = c.stalls_reported;
      s.signals_sent = c.signals_sent;
      s.signals_resent = c.signals_resent;
      s.signal_runs = c.signal_runs;
      s.signals_deferred = c.signals_deferred;
      s.proxy_runs = c.proxy_runs;
      s.doorbell_fd_writes = c.doorbell_fd_writes;
      s.wakes_relayed = c.wakes_relayed;
    }
    const std::string text = xcall::format_stats(cxx, columns);
    if (len > 0) {
      const std::size_t n = text.size() < len - 1 ? text.size() : len - 1;
      std::memcpy(buf, text.data(), n);
      buf[n] = '\0';
    }
    if (text.size() > static_cast<std::size_t>(SSIZE_MAX)) {
      return fail(fn, ERANGE, "the text is longer than SSIZE_MAX");
    }
    return static_cast<ssize_t>(text.size());
  });
}

}  // extern "C"
