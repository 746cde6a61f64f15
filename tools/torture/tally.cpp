// tally.cpp — per-thread counter blocks, their registry, and failure reports.
//
// Ordering: counters are relaxed (see the header). The registry is a mutex:
// a block is registered once per thread and never freed before exit, so the
// summing thread may read a block whose thread has ended. Deferred failures
// sit in a fixed array of slots, each claimed once by a fetch_add on the
// next-slot index and published by a release of its state.
#include "tally.hpp"

#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "report.hpp"

namespace xcall_torture {
namespace {

struct alignas(64) block {
  std::array<std::atomic<std::uint64_t>, kEvents> events{};
  std::array<std::atomic<std::uint64_t>, kChecks> passed{};
  std::array<std::atomic<std::uint64_t>, kChecks> failed{};
};

struct registry {
  std::mutex lock;
  std::vector<std::unique_ptr<block>> blocks;
};

registry& the_registry() {
  static registry* r = new registry;  // never destroyed: threads may count at exit
  return *r;
}

block& my_block() {
  thread_local block* mine = [] {
    registry& r = the_registry();
    std::lock_guard<std::mutex> g(r.lock);
    r.blocks.push_back(std::make_unique<block>());
    return r.blocks.back().get();
  }();
  return *mine;
}

void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
  // Only this thread writes its block, but a signal handler on this thread
  // may bump the same counter between a load and a store: one RMW (the line
  // is this thread's own, so it costs no transfer).
  counter.fetch_add(n, std::memory_order_relaxed);
}

std::atomic<bool> g_failed{false};
// Printed failures per check: one noisy check must not hide another's.
std::array<std::atomic<unsigned>, kChecks> g_printed{};
constexpr unsigned kMaxPrinted = 20;

// Failures reported from signal handlers, printed later. Slots are used once:
// enough for the first few of every check; later ones are only counted.
enum slot_state : int { kSlotEmpty, kSlotReady, kSlotPrinted };
struct deferred_failure {
  std::atomic<int> state{kSlotEmpty};
  check which = check::count;
  bool limit = false;  ///< not a failure: "further failures are not printed"
  char text[384] = {};
};
constexpr unsigned kDeferredSlots = 128;
deferred_failure g_deferred[kDeferredSlots];
std::atomic<unsigned> g_deferred_next{0};

/// Counts a failure and fails the run; returns how many of this check came
/// before it (below kMaxPrinted: print it; equal: say the rest are not).
unsigned count_failure(check c) noexcept {
  bump(my_block().failed[static_cast<unsigned>(c)], 1);
  g_failed.store(true, std::memory_order_relaxed);
  return g_printed[static_cast<unsigned>(c)].fetch_add(1, std::memory_order_relaxed);
}

std::string further_line(check c) {
  return "!!! further " + std::string(check_name(c)) + " failures are counted but not printed";
}

constexpr const char* kCheckNames[kChecks] = {
    "caller-write", "handler-write", "right-cpu", "exactly-once", "at-most-once", "enxio",
    "freed",        "cond",          "rpc",       "async",        "error-code",   "stall",
    "hotplug",      "irq-guard",     "proxy",     "delivery",     "deadlock",     "exception",
    "region",       "attach-race",   "hang",      "idle",         "doorbell-fd",  "rendezvous",
};

constexpr const char* kCheckDescriptions[kChecks] = {
    "handler saw the caller's write made before the call",
    "waiting caller saw the handler's write",
    "handler ran on a CPU the call was sent to",
    "CPU in the mask and online for the whole call ran it exactly once",
    "no CPU ran one call twice",
    "single calls returned ENXIO exactly for offline targets",
    "every no-wait argument was freed by its handler (no call lost)",
    "predicate evaluated once per CPU by the caller, handler only where true",
    "RPC completion flag seen",
    "accepted async descriptors ran once each",
    "no unexpected error code",
    "no stall reported, but for hosts starved of a CPU",
    "hotplug and attach/detach worked",
    "no call ran while its CPU's host was inside its guarded computation",
    "calls ran on their CPU's host, or by a proxy while the host was parked",
    "signal handlers (--delivery signal), doorbell fd wakes (--delivery fd) and proxies "
    "(--proxy) ran calls",
    "EDEADLK exactly for a waiting call in an irq_guard and hotplug of one's own CPU",
    "thrown callables/predicates reached the caller; a thrown predicate ran nothing",
    "in a blocking_region the thread is an outside caller exactly when it parked; "
    "this_cpu() is the same after every nested step",
    "one of two racing attaches won, the other got EBUSY with a message",
    "no thread stayed in one activity longer than --hang-timeout",
    "idle_wait inside an irq_guard (or a locally run function) returned false at once",
    "doorbell fd: an open eventfd per attachment, readable only inside a loop_wait that "
    "announced, at most one write per wait",
    "the functions of one rendezvous call met: each waiting one saw all the others start",
};

}  // namespace

const char* check_name(check c) noexcept { return kCheckNames[static_cast<unsigned>(c)]; }
const char* check_description(check c) noexcept {
  return kCheckDescriptions[static_cast<unsigned>(c)];
}

std::uint64_t totals::ops() const noexcept {
  std::uint64_t n = 0;
  for (unsigned k = 0; k < kOpKinds; ++k) n += get(op_event(static_cast<op_kind>(k)));
  return n;
}
std::uint64_t totals::checks_passed() const noexcept {
  std::uint64_t n = 0;
  for (std::uint64_t v : passed) n += v;
  return n;
}
std::uint64_t totals::checks_failed() const noexcept {
  std::uint64_t n = 0;
  for (std::uint64_t v : failed) n += v;
  return n;
}

void prepare_thread() { (void)my_block(); }

void add(event e, std::uint64_t n) noexcept {
  bump(my_block().events[static_cast<unsigned>(e)], n);
}
void pass(check c, std::uint64_t n) noexcept {
  bump(my_block().passed[static_cast<unsigned>(c)], n);
}

void fail(check c, const std::string& what) {
  const unsigned n = count_failure(c);
  if (n < kMaxPrinted) {
    console::error("!!! FAILED " + std::string(check_name(c)) + ": " + what);
  } else if (n == kMaxPrinted) {
    console::error(further_line(c));
  }
}

void fail_signal_safe(check c, const char* what) noexcept {
  // Nothing here may print: the text (or the "further failures" line) waits
  // in a slot for flush_deferred_failures().
  const unsigned n = count_failure(c);
  if (n > kMaxPrinted) return;
  const unsigned i = g_deferred_next.fetch_add(1, std::memory_order_relaxed);
  if (i >= kDeferredSlots) return;  // counted above; the text is lost
  deferred_failure& slot = g_deferred[i];
  slot.which = c;
  slot.limit = n == kMaxPrinted;
  if (!slot.limit) std::strncpy(slot.text, what, sizeof(slot.text) - 1);
  // release: publishes which/text; pairs with the acquire in the flush.
  slot.state.store(kSlotReady, std::memory_order_release);
}

void flush_deferred_failures() {
  const unsigned used = g_deferred_next.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < used && i < kDeferredSlots; ++i) {
    deferred_failure& slot = g_deferred[i];
    int ready = kSlotReady;
    // acquire: pairs with the release in fail_signal_safe(). The CAS lets
    // the main thread and the watchdog flush without printing twice.
    if (!slot.state.compare_exchange_strong(ready, kSlotPrinted, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
      continue;
    }
    console::error(slot.limit ? further_line(slot.which)
                              : "!!! FAILED " + std::string(check_name(slot.which)) +
                                    " (in a signal handler): " + slot.text);
  }
  if (used > kDeferredSlots) {  // slots ran out: some texts were lost
    static std::atomic<bool> said{false};
    if (!said.exchange(true, std::memory_order_relaxed)) {
      console::error("!!! further failures in signal handlers are counted but not printed");
    }
  }
}

totals sum_totals() {
  totals t;
  registry& r = the_registry();
  std::lock_guard<std::mutex> g(r.lock);
  for (const auto& b : r.blocks) {
    for (unsigned i = 0; i < kEvents; ++i)
      t.events[i] += b->events[i].load(std::memory_order_relaxed);
    for (unsigned i = 0; i < kChecks; ++i) {
      t.passed[i] += b->passed[i].load(std::memory_order_relaxed);
      t.failed[i] += b->failed[i].load(std::memory_order_relaxed);
    }
  }
  return t;
}

bool any_failure() noexcept { return g_failed.load(std::memory_order_relaxed); }
void mark_failed() noexcept { g_failed.store(true, std::memory_order_relaxed); }

}  // namespace xcall_torture
