// tally.cpp — per-thread counter blocks, their registry, and failure reports.
//
// Ordering: counters are relaxed (see the header). The registry is a mutex:
// a block is registered once per thread and never freed before exit, so the
// summing thread may read a block whose thread has ended.
#include "tally.hpp"

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
  // Only this thread writes its block: a load and a store are enough.
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

std::atomic<bool> g_failed{false};
// Printed failures per check: one noisy check must not hide another's.
std::array<std::atomic<unsigned>, kChecks> g_printed{};
constexpr unsigned kMaxPrinted = 20;

constexpr const char* kCheckNames[kChecks] = {
    "caller-write", "handler-write", "right-cpu", "exactly-once", "at-most-once",
    "enxio",        "freed",         "cond",      "rpc",          "async",
    "error-code",   "stall",         "hotplug",
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
    "no stall reported",
    "hotplug and attach/detach worked",
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

void add(event e, std::uint64_t n) noexcept { bump(my_block().events[static_cast<unsigned>(e)], n); }
void pass(check c, std::uint64_t n) noexcept { bump(my_block().passed[static_cast<unsigned>(c)], n); }

void fail(check c, const std::string& what) {
  bump(my_block().failed[static_cast<unsigned>(c)], 1);
  g_failed.store(true, std::memory_order_relaxed);
  const unsigned n = g_printed[static_cast<unsigned>(c)].fetch_add(1, std::memory_order_relaxed);
  if (n < kMaxPrinted) {
    console::error("!!! FAILED " + std::string(check_name(c)) + ": " + what);
  } else if (n == kMaxPrinted) {
    console::error("!!! further " + std::string(check_name(c)) +
                   " failures are counted but not printed");
  }
}

totals sum_totals() {
  totals t;
  registry& r = the_registry();
  std::lock_guard<std::mutex> g(r.lock);
  for (const auto& b : r.blocks) {
    for (unsigned i = 0; i < kEvents; ++i) t.events[i] += b->events[i].load(std::memory_order_relaxed);
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
