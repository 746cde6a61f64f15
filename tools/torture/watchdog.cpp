// watchdog.cpp — activity board and the tool's hang detector.
//
// Ordering: relaxed everywhere (see the header); the thread is joined by the
// destructor, and on firing the process exits from the watchdog thread.
#include "watchdog.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "report.hpp"
#include "run_state.hpp"
#include "starvation.hpp"
#include "tally.hpp"

namespace xcall_torture {
namespace {

using clock = std::chrono::steady_clock;

constexpr double kGraceS = 60;        // after the duration, before we call it a hang
constexpr double kFailedGraceS = 10;  // once stopping with failures already seen

std::int64_t now_ns(clock::time_point t = clock::now()) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

struct board {
  std::mutex lock;
  std::vector<std::unique_ptr<activity>> slots;
};

board& the_board() {
  static board* b = new board;  // never destroyed: slots are read at exit
  return *b;
}

}  // namespace

void activity::begin(const char* what, xcall::cpu_t cpu) noexcept {
  cpu_.store(cpu, std::memory_order_relaxed);
  since_ns_.store(now_ns(), std::memory_order_relaxed);
  what_.store(what, std::memory_order_relaxed);
}

void activity::end() noexcept { what_.store(nullptr, std::memory_order_relaxed); }

void activity::set_origin(unsigned invoker, std::uint64_t op, unsigned depth) noexcept {
  origin_invoker_.store(invoker, std::memory_order_relaxed);
  origin_op_.store(op, std::memory_order_relaxed);
  origin_depth_.store(depth, std::memory_order_relaxed);
}

std::string activity::take_hang(std::int64_t now, std::int64_t limit_ns) {
  if (what_.load(std::memory_order_relaxed) == nullptr) return {};
  const std::int64_t since = since_ns_.load(std::memory_order_relaxed);
  if (since == hang_reported_ || now - since < limit_ns) return {};
  hang_reported_ = since;
  return describe(clock::time_point(std::chrono::nanoseconds(now)));
}

std::string activity::describe(clock::time_point now) const {
  const char* what = what_.load(std::memory_order_relaxed);
  if (what == nullptr) return {};
  const xcall::cpu_t cpu = cpu_.load(std::memory_order_relaxed);
  const double s = (now_ns(now) - since_ns_.load(std::memory_order_relaxed)) / 1e9;
  char buf[64];
  std::snprintf(buf, sizeof(buf), " for %.1f s", s);
  std::string line = name_ + ": " + what;
  if (cpu != xcall::no_cpu) line += " (CPU " + std::to_string(cpu) + ")";
  const unsigned depth = origin_depth_.load(std::memory_order_relaxed);
  if (depth != 0) {
    line += " at depth " + std::to_string(depth) + " under op #" +
            std::to_string(origin_op_.load(std::memory_order_relaxed)) + " of invoker " +
            std::to_string(origin_invoker_.load(std::memory_order_relaxed));
  }
  return line + buf;
}

activity& new_activity(std::string name) {
  board& b = the_board();
  std::lock_guard<std::mutex> g(b.lock);
  b.slots.push_back(std::make_unique<activity>(std::move(name)));
  return *b.slots.back();
}

std::string describe_activities() {
  board& b = the_board();
  std::lock_guard<std::mutex> g(b.lock);
  const auto now = clock::now();
  std::string out;
  for (const auto& slot : b.slots) {
    std::string line = slot->describe(now);
    if (!line.empty()) out += "  " + line + "\n";
  }
  return out.empty() ? std::string("  (no thread reports an activity)\n") : out;
}

std::vector<std::string> find_hangs(std::chrono::nanoseconds limit) {
  board& b = the_board();
  std::lock_guard<std::mutex> g(b.lock);
  const std::int64_t now = now_ns();
  std::vector<std::string> out;
  for (const auto& slot : b.slots) {
    std::string line = slot->take_hang(now, limit.count());
    if (!line.empty()) out.push_back(std::move(line));
  }
  return out;
}

watchdog::watchdog(run_state& run, std::function<void(const std::string&)> on_fire)
    : run_(run), on_fire_(std::move(on_fire)), thread_([this] { main(); }) {}

watchdog::~watchdog() {
  done_.store(true, std::memory_order_relaxed);
  thread_.join();
}

void watchdog::stopping() noexcept { stop_ns_.store(now_ns(), std::memory_order_relaxed); }

void watchdog::main() {
  const auto deadline = run_.start + std::chrono::duration<double>(run_.opt.duration_s + kGraceS);
  const auto hang_limit = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(run_.opt.hang_timeout_s));
  while (!done_.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    process_starvation().sample();
    if (hang_limit.count() > 0) {
      const std::vector<std::string> hangs = find_hangs(hang_limit);
      const std::string excuse = hangs.empty() ? "" : starvation_excuse(hang_limit);
      for (const std::string& line : hangs) {
        char head[64];
        std::snprintf(head, sizeof(head),
                      "no progress for more than %g s: ", run_.opt.hang_timeout_s);
        if (!excuse.empty()) {
          add(event::starved_timeouts);
          console::error("!!! " + excuse + head + line);
          continue;
        }
        fail(check::hang, head + line);
      }
    }
    const auto now = clock::now();
    const std::int64_t stop = stop_ns_.load(std::memory_order_relaxed);
    std::string why;
    if (now >= deadline) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), "the run did not end within its duration + %.0f s", kGraceS);
      why = buf;
    } else if (stop != 0 && any_failure() && now_ns(now) - stop > kFailedGraceS * 1e9) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), "failures were seen and the run did not stop within %.0f s",
                    kFailedGraceS);
      why = buf;
    }
    if (why.empty()) continue;
    mark_failed();
    on_fire_("watchdog: " + why + "; still busy:\n" + describe_activities());
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(kExitFailure);
  }
}

}  // namespace xcall_torture
