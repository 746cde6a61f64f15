// peers.cpp — what code uses instead of xcall, measured the same way:
//
//  - a std::mutex + std::condition_variable + std::function work queue with
//    one worker thread (bounded, the producers wait when it is full): the
//    thing most code uses; its round trip (submit, wait for completion) and
//    its throughput.
//  - a bare lock-free list, push one / take all (the kernel's llist, and the
//    skeleton of xcall's per-CPU queue) with a consumer that polls: how fast
//    the same data structure goes with nothing around it — no doorbell, no
//    host state, no hotplug, no statistics. Its round trip (push one node,
//    wait for its release) is the structural floor of a polling xcall call.
//
// DPDK's remote launch is in dpdk_peer.cpp (its own library and flags).
//
// Producers use a ring of 64 descriptors each (xcall's async figures use the
// same ring), and the mutex queue holds 64 entries per producer, so each
// peer has the same number of calls in flight per producer.
//
// Ordering (lock-free list): push is a release CAS on head, take_all an
// acquire exchange; a node's busy flag is cleared with a release store by the
// consumer before it runs the function and read with an acquire load by the
// producer before it refills the node (as xcall's csd lock).
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "affinity.hpp"
#include "format.hpp"
#include "harness.hpp"
#include "results.hpp"

namespace xcall::bench {
namespace {

constexpr std::size_t kRing = 64;  ///< descriptors (calls in flight) per producer

struct alignas(64) counter {
  std::atomic<std::uint64_t> n{0};
  /// Single writer (the worker/consumer): a relaxed load and store, no RMW.
  void bump() noexcept {
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return n.load(std::memory_order_acquire); }
};

// ---- mutex + condition variable + std::function -------------------------------

class mutex_queue {
 public:
  explicit mutex_queue(std::size_t capacity) : capacity_(capacity) {
    worker_ = std::thread([this] { run(); });
  }
  ~mutex_queue() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    not_empty_.notify_one();
    worker_.join();
  }

  void push(std::function<void()> f) {
    {
      std::unique_lock<std::mutex> lock(m_);
      not_full_.wait(lock, [this] { return q_.size() < capacity_; });
      q_.push_back(std::move(f));
    }
    not_empty_.notify_one();
  }

 private:
  void run() {
    pin_self(target_core());
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      not_empty_.wait(lock, [this] { return !q_.empty() || stop_; });
      if (q_.empty()) return;
      std::function<void()> f = std::move(q_.front());
      q_.pop_front();
      const bool was_full = q_.size() + 1 == capacity_;
      lock.unlock();
      if (was_full) not_full_.notify_all();
      f();
      lock.lock();
    }
  }

  std::mutex m_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<std::function<void()>> q_;
  std::size_t capacity_;
  bool stop_ = false;
  std::thread worker_;
};

/// A completion the caller waits on: the usual mutex/condvar latch.
struct completion {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  void signal() {
    {
      std::lock_guard<std::mutex> lock(m);
      done = true;
    }
    cv.notify_one();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [this] { return done; });
    done = false;
  }
};

measurement mutex_queue_roundtrip(const config& cfg) {
  mutex_queue q(kRing);
  completion c;
  pin_self(caller_core());
  auto samples = sample_latency(series(cfg), [&] {
    q.push([&c] { c.signal(); });
    c.wait();
  });
  return latency_figure("peer.mutex_queue.roundtrip",
                        "mutex+condvar+std::function queue: submit and wait", std::move(samples),
                        "one worker thread; completion is a mutex/condvar latch");
}

measurement mutex_queue_throughput(const config& cfg, unsigned producers) {
  counter runs;
  mutex_queue q(kRing * producers);
  const best_trial b = best_of(cfg.trials, [&] {
    const std::uint64_t before = runs.get();
    const producer_run run =
        run_producers(producers, cfg.throughput_seconds, [&](unsigned, std::atomic<bool>& stop) {
          std::uint64_t n = 0;
          while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; ++i, ++n) q.push([&runs] { runs.bump(); });
          }
          return n;
        });
    const std::uint64_t end = wait_until_done([&] { return runs.get() - before >= run.issued; });
    return trial{rate_of(run, end),
                 fmt::format("bounded at {} entries; ", kRing * producers) + run_note(run, end)};
  });
  const bool one = producers == 1;
  return throughput_figure(
      one ? "peer.mutex_queue.async_1" : "peer.mutex_queue.async_all",
      fmt::format("mutex+condvar+std::function queue, {} producer(s) → 1 worker", producers),
      b.best.rate, b.note());
}

// ---- bare lock-free list, push one / take all ---------------------------------

struct lf_node {
  lf_node* next = nullptr;
  void (*fn)(void*) = nullptr;
  void* arg = nullptr;
  std::atomic<std::uint32_t> busy{0};
};

class lockfree_list {
 public:
  void push(lf_node& n) noexcept {
    lf_node* old = head_.load(std::memory_order_relaxed);
    do {
      n.next = old;
      // release: publishes fn/arg/next; pairs with the acquire exchange in take_all().
    } while (!head_.compare_exchange_weak(old, &n, std::memory_order_release,
                                          std::memory_order_relaxed));
  }
  /// Consumer only: everything pushed, oldest first.
  lf_node* take_all() noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    // acquire: pairs with the release CAS in push().
    lf_node* lifo = head_.exchange(nullptr, std::memory_order_acquire);
    lf_node* fifo = nullptr;
    while (lifo != nullptr) {
      lf_node* next = lifo->next;
      lifo->next = fifo;
      fifo = lifo;
      lifo = next;
    }
    return fifo;
  }

 private:
  alignas(64) std::atomic<lf_node*> head_{nullptr};
  char pad_[64 - sizeof(std::atomic<lf_node*>)]{};
};

void count_run(void* arg) { static_cast<counter*>(arg)->bump(); }

/// The consumer of a lock-free list: polls the head, takes all, runs each
/// node's function and releases it — before the run (`release_first`, as a
/// no-wait call) or after it (as a waiting call, whose caller must see the
/// function's effects).
class list_consumer {
 public:
  list_consumer(lockfree_list& list, bool release_first)
      : list_(list), release_first_(release_first), thread_([this] { run(); }) {}
  ~list_consumer() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }

 private:
  void run() {
    pin_self(target_core());
    while (!stop_.load(std::memory_order_relaxed)) {
      lf_node* n = list_.take_all();
      if (n == nullptr) {
        cpu_relax();
        continue;
      }
      while (n != nullptr) {
        lf_node* next = n->next;
        void (*fn)(void*) = n->fn;
        void* arg = n->arg;
        if (release_first_) {
          // release: the producer may refill the node; pairs with its acquire.
          n->busy.store(0, std::memory_order_release);
          fn(arg);
        } else {
          fn(arg);
          // release: publishes fn's effects; pairs with the producer's acquire.
          n->busy.store(0, std::memory_order_release);
        }
        n = next;
      }
    }
  }

  lockfree_list& list_;
  bool release_first_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A round trip through the bare list: push one node, wait for its release.
/// The same lines move as in a polling xcall single call with wait (the list
/// head, the node), and nothing else does: the structural floor of xcall's
/// design, between the cache-line ping-pong and xcall's poll mode.
measurement lockfree_roundtrip(const config& cfg) {
  lockfree_list list;
  counter runs;
  list_consumer consumer(list, /*release_first=*/false);
  lf_node node;
  pin_self(caller_core());
  auto samples = sample_latency(series(cfg), [&] {
    node.busy.store(1, std::memory_order_relaxed);  // published by push()
    node.fn = count_run;
    node.arg = &runs;
    list.push(node);
    // acquire: pairs with the consumer's release after the run.
    while (node.busy.load(std::memory_order_acquire) != 0) cpu_relax();
  });
  return latency_figure("peer.lockfree_list.roundtrip",
                        "bare lock-free list: push one, polling consumer runs and releases it",
                        std::move(samples),
                        "the lines a polling xcall single call moves (list head, descriptor), "
                        "and nothing else");
}

/// Best of `trials` trials of the bare list with `producers` producers.
best_trial lockfree_trials(const config& cfg, unsigned producers, unsigned trials) {
  lockfree_list list;
  counter runs;
  std::optional<list_consumer> consumer;
  consumer.emplace(list, /*release_first=*/true);
  std::vector<std::vector<lf_node>> rings;
  for (unsigned k = 0; k < producers; ++k) rings.emplace_back(kRing);
  std::vector<std::uint64_t> next(producers, 0);  // each producer's position in its ring
  const best_trial b = best_of(trials, [&] {
    const std::uint64_t before = runs.get();
    const producer_run run =
        run_producers(producers, cfg.throughput_seconds, [&](unsigned k, std::atomic<bool>& stop) {
          std::vector<lf_node>& ring = rings[k];
          std::uint64_t n = 0;
          std::uint64_t pos = next[k];  // a local copy: next[] shares a line between producers
          while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; ++i, ++n) {
              lf_node& node = ring[pos++ % kRing];
              // acquire: pairs with the consumer's release of the node.
              spin_then_yield([&node] { return node.busy.load(std::memory_order_acquire) == 0; });
              node.busy.store(1, std::memory_order_relaxed);  // published by push()
              node.fn = count_run;
              node.arg = &runs;
              list.push(node);
            }
          }
          next[k] = pos;
          return n;
        });
    const std::uint64_t end = wait_until_done([&] { return runs.get() - before >= run.issued; });
    return trial{rate_of(run, end),
                 "no doorbell: the consumer spins on the list head; " + run_note(run, end)};
  });
  consumer.reset();
  return b;
}

measurement lockfree_throughput(const config& cfg, unsigned producers) {
  const best_trial b = lockfree_trials(cfg, producers, cfg.trials);
  const bool one = producers == 1;
  return throughput_figure(
      one ? "peer.lockfree_list.async_1" : "peer.lockfree_list.async_all",
      fmt::format("bare lock-free list push/take-all, {} producer(s) → 1 polling consumer",
                  producers),
      b.best.rate, b.note());
}

void report(results& out, measurement m) {
  progress("peers", m.kind == figure_kind::latency
                        ? fmt::format("{:<72} p50 {}", m.label, fmt_ns(m.lat.p50))
                        : fmt::format("{:<72} {}", m.label, fmt_rate(m.rate)));
  out.add(std::move(m));
}

}  // namespace

double lockfree_rate(const config& cfg, unsigned producers) {
  const double rate = lockfree_trials(cfg, producers, 1).best.rate;
  unpin_self();
  return rate;
}

void run_peers(const config& cfg, results& out) {
  report(out, mutex_queue_roundtrip(cfg));
  report(out, mutex_queue_throughput(cfg, 1));
  report(out, mutex_queue_throughput(cfg, all_producers()));
  report(out, lockfree_roundtrip(cfg));
  report(out, lockfree_throughput(cfg, 1));
  report(out, lockfree_throughput(cfg, all_producers()));
  unpin_self();
}

}  // namespace xcall::bench
